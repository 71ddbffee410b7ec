// Socket helpers: one owner per socket, an outbox that serialises sends.
export {};
