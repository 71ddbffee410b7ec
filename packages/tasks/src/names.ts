/**
 * Task name spellings. A canonical name is camelCase (`squareRoot`); documents may also write
 * it in snake_case (`square_root`) and with raspi-rtl's prefix (`task_square_root`).
 */

/** `squareRoot` -> `square_root`; `log10` -> `log10`; `square_root` stays. */
export function toSnakeCase(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

/** `square_root` -> `squareRoot`; `squareRoot` stays. */
export function toCamelCase(name: string): string {
  return name.replace(/_+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Every spelling that names `name`: itself, camelCase, snake_case, each with and without `task_`. */
export function spellingsOf(name: string): string[] {
  const forms = new Set([name, toCamelCase(name), toSnakeCase(name)]);
  for (const f of [...forms]) forms.add(`task_${f}`);
  return [...forms];
}
