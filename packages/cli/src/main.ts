/** Process entry of the `rtl` command (bin/rtl.js imports this file). */
import { runCli } from './cli.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Everything the command opened is closed by now; do not let a stray handle keep it alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    console.error(
      `rtl: internal error (please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    );
    process.exit(1);
  },
);
