/** Spread in every peer's resource entry, so mixed versions in one cluster are visible. */
export const VERSION = '0.1.0';
