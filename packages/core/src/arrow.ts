// Owned by the Arrow codec work: encodeTable / decodeTable / toTable.
export {};
