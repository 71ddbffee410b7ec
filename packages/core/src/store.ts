// Owned by the store work: the LMDB Store.
export {};
