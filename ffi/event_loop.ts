/**
 * The descriptor Deno's event loop sleeps on, so that a reader can wait for its device and for
 * everything the event loop waits for in one `poll` on the JavaScript thread.
 *
 * Deno's event loop (tokio) sleeps in `epoll_wait` on one epoll instance per runtime. An epoll
 * descriptor is itself pollable: it reads as ready while any descriptor registered in it has an
 * event pending (sockets, the eventfd through which other threads wake the loop, the signal
 * pipe). `poll([device, loop])` on the JavaScript thread therefore returns as soon as either the
 * device or the event loop has work; the kernel wakes that thread directly, instead of waking a
 * worker thread that then wakes the event loop.
 */

let cached: number | null | undefined;

/**
 * The epoll descriptor of the calling thread's Deno runtime, or undefined when it cannot be
 * identified (no `/proc`, no permission to open a listener, not Linux). Found once per
 * thread: a TCP listener is opened (Deno registers it in its epoll at once), its socket
 * inode looked up in `/proc/thread-self/net/tcp`, and the epoll whose `fdinfo` lists that inode
 * is the one; the listener is closed again.
 *
 * @example
 * ```ts
 * const fd = eventLoopFd(); // e.g. 3
 * ```
 */
export function eventLoopFd(): number | undefined {
  if (cached === undefined) cached = find() ?? null;
  return cached ?? undefined;
}

function find(): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  let listener: Deno.Listener | undefined;
  try {
    listener = listenAnywhere();
    const { hostname, port } = listener.addr as Deno.NetAddr;
    const inode = socketInode(hostname === "127.0.0.1" ? "0100007F" : "00000000", port);
    if (inode === undefined) return undefined;
    const wanted = `ino:${inode.toString(16)} `;
    for (const entry of Deno.readDirSync("/proc/self/fd")) {
      const fd = Number(entry.name);
      let target: string;
      try {
        target = Deno.readLinkSync(`/proc/self/fd/${fd}`);
      } catch {
        continue;
      }
      if (target !== "anon_inode:[eventpoll]") continue;
      const info = Deno.readTextFileSync(`/proc/self/fdinfo/${fd}`);
      if (info.includes(wanted)) return fd;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    listener?.close();
  }
}

// A TCP listener on a port the kernel picks: on loopback, or on every address where loopback
// cannot be bound (a namespace whose `lo` is down refuses 127.0.0.1 once it has another address).
function listenAnywhere(): Deno.Listener {
  try {
    return Deno.listen({ hostname: "127.0.0.1", port: 0 });
  } catch {
    return Deno.listen({ hostname: "0.0.0.0", port: 0 });
  }
}

// The inode of the IPv4 TCP socket listening on address:port in this thread's namespace.
function socketInode(address: string, port: number): number | undefined {
  const local = `${address}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of Deno.readTextFileSync("/proc/thread-self/net/tcp").split("\n")) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[3] === "0A") return Number(fields[9]);
  }
  return undefined;
}
