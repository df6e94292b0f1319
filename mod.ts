/**
 * Systemd socket activation for Deno and Node services: find the sockets the
 * service manager passed (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`), make
 * them close-on-exec, and pick the right one by name, exactly as libsystemd's
 * `sd_listen_fds_with_names()` would.
 *
 * On Deno, run with `--allow-env --allow-ffi`. On Node, install
 * `socket-activation` from npm.
 *
 * @example Serving HTTP on the socket systemd passed, or on a port
 * ```ts ignore
 * import { createServer } from "node:http";
 * import { getSystemdSocket } from "@socket-activation/socket-activation";
 *
 * const server = createServer((_request, response) => response.end("hello\n"));
 * const fd = getSystemdSocket("web", { unsetEnv: true });
 * server.listen(fd === undefined ? { port: 8080 } : { fd });
 * ```
 *
 * @module
 */

export {
  ActivationError,
  type ActivationErrorCode,
  type ActivationErrorOptions,
} from "./src/errors.ts";
export {
  type ListenEnv,
  type ListenPlan,
  parseListenEnv,
  type ParseListenEnvOptions,
  SD_LISTEN_FDS_START,
} from "./src/listen_env.ts";
export {
  type ListenFd,
  listenFds,
  type ListenFdsOptions,
} from "./src/listen_fds.ts";
export { getSystemdSocket } from "./src/get_systemd_socket.ts";
export {
  type Endpoint,
  type FdEndpoint,
  type FdNameEndpoint,
  formatEndpoint,
  type HttpEndpoint,
  parseEndpoint,
  type UdpEndpoint,
  type UnixEndpoint,
} from "./src/endpoint.ts";
export {
  type SocketAddress,
  type SocketInfo,
  socketInfo,
} from "./src/socket_info.ts";
export {
  type Config,
  type ListenEntry,
  loadConfig,
  parseConfig,
  stringifyConfig,
} from "./src/config.ts";
export {
  type HttpServer,
  serve,
  type ServeHandler,
  type ServeOptions,
} from "./src/serve.ts";
export {
  errno,
  extendTimeout,
  mainPid,
  notify,
  notifyBarrier,
  type NotifyBarrierOptions,
  type NotifyOptions,
  notifyWithFds,
  ready,
  reloading,
  status,
  stopping,
  watchdogPing,
} from "./src/notify.ts";
export {
  startWatchdog,
  type StartWatchdogOptions,
  type Watchdog,
  watchdogEnabled,
  type WatchdogEnabledOptions,
} from "./src/watchdog.ts";
export {
  removeStoredFds,
  storeFds,
  type StoreFdsOptions,
} from "./src/fd_store.ts";
export {
  onReload,
  type OnReloadOptions,
  type ReloadHandler,
} from "./src/reload.ts";
export { listen, type ListenOptions } from "./src/listen.ts";
export { connect } from "./src/connect.ts";
export {
  type DatagramAddress,
  type DatagramRemoteInfo,
  type DatagramSocket,
  listenDatagram,
  type ListenDatagramOptions,
} from "./src/datagram.ts";
export { isFifo, isSpecial } from "./src/fd_kind.ts";
export {
  readPassedFile,
  type ReadPassedFileOptions,
} from "./src/passed_file.ts";
export {
  activate,
  type ActivatedEndpoint,
  type ActivateOptions,
  type Activation,
  type ActivatorEvent,
  type ChildExit,
  type ListenSpec,
  type RestartPolicy,
} from "./src/activator.ts";
export {
  createNotifyReceiver,
  type Notification,
  type NotifyReceiver,
  type StoredFd,
} from "./src/notify_receiver.ts";
