/** Types of dns-packet's `types.js` (type names and numbers), which @types/dns-packet does not describe. */

/** The number of a type name; `UNKNOWN_<n>` gives n; unknown names give 0. */
export function toType(name: string): number;
/** The name of a type number; `UNKNOWN_<n>` when dns-packet has no name for it. */
export function toString(type: number): string;
