/** Empath's version, shown by `empath --version` and `empathctl --version`. */
export const VERSION = "0.1.0";
