// Owned by the logging work: createLogger (pino).
export {};
