/** The four variables of the socket-activation protocol (SPEC section 1). */
export const LISTEN_VARIABLES = [
  "LISTEN_PID",
  "LISTEN_PIDFDID",
  "LISTEN_FDS",
  "LISTEN_FDNAMES",
] as const;
