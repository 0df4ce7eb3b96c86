/*
 * scitags_recv: batched UDP receive for the collector (Linux only).
 *
 * Why native: node:dgram costs, per datagram, a 64 KiB allocation, an ArrayBuffer, an rinfo
 * object and an address string (uv_inet_ntop), plus one JavaScript call and one kernel
 * wake-up. Here one recvmmsg(2) call fills up to `slots` datagrams into buffers that
 * JavaScript allocated once and keeps, and JavaScript is called once per batch with the
 * count. Source addresses are handed over as 16 binary octets; JavaScript formats each
 * distinct address once (collectors/batch-receive.ts AddressCache).
 *
 * Plain C against node_api.h (Node-API 8, ABI-stable: one build serves Node 20, 22 and 24).
 * Context-aware (NAPI_MODULE_INIT, no global state), so worker_threads can load it; an async
 * environment cleanup hook closes the socket and waits for libuv to release the poll handle
 * when a worker (or the process) tears its environment down.
 *
 * JavaScript API (see batch-receive.ts for the typed declaration):
 *   new Receiver(address, port, receiveBufferBytes, reusePort, slots, slotBytes,
 *                data: Uint8Array, offsets: Uint32Array, lengths: Uint32Array,
 *                ports: Uint16Array, addrs: Uint8Array, flags: Uint8Array)
 *     creates, configures and binds the socket (throws with err.code, e.g. 'EADDRINUSE');
 *     sets this.port, this.receiveBufferBytes, this.family.
 *   receiver.start(onBatch: (count: number) => void)   starts watching readability.
 *   receiver.close()                                   idempotent.
 *   receiver.stats() -> { kernelDrops, datagrams, batches, truncated, errors, callbackErrors }
 */
#ifndef __linux__
#error "scitags_recv needs Linux (recvmmsg(2), SO_RXQ_OVFL); the collector falls back to node:dgram"
#endif

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* recvmmsg(2), struct mmsghdr */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

/* socket(7): since Linux 2.6.33; older headers may lack the constant. */
#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
/* socket(7): since Linux 2.6.14. */
#ifndef SO_RCVBUFFORCE
#define SO_RCVBUFFORCE 33
#endif

/* Batches per readiness event: bounds the time spent before other event-loop work runs.
 * The socket is level-triggered in libuv's epoll, so what is left is read on the next turn. */
#define MAX_BATCHES_PER_EVENT 16
/*
 * After the socket queue has been drained, the receiver rests before watching the socket
 * again, so datagrams gather in the kernel queue and arrive in full batches: at 100k
 * datagrams/s a wake-up per few datagrams cost ~15 % of the daemon's CPU in context switches
 * (perf: finish_task_switch), and every rest re-arms a timer (native_write_msr, costly in a
 * VM), so longer rests are cheaper. A busy receiver (full batches) never rests. The rest is
 * sized to the buffer the kernel granted: at most what it holds at 1M datagrams/s of
 * REST_TRUESIZE octets each (truesize: payload plus the kernel's per-skb overhead), at most
 * REST_MAX_MS; a small buffer (the kernel default without net.core.rmem_max raised) gets none.
 */
#define REST_MAX_MS 5
#define REST_TRUESIZE 2048
#define REST_RATE_PER_MS 1000
#define MAX_SLOTS 1024
#define MAX_SLOT_BYTES (1u << 20)
/* Ancillary space per message: SO_RXQ_OVFL carries one uint32_t (socket(7)). */
#define CTRL_BYTES CMSG_SPACE(sizeof(uint32_t))

/* Byte 0 of flags[i]: recvmmsg(2) reported MSG_TRUNC (the datagram was longer than its slot). */
#define FLAG_TRUNCATED 1u

typedef union {
  struct sockaddr sa;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
} peer_addr;

enum { BUF_DATA, BUF_OFFSETS, BUF_LENGTHS, BUF_PORTS, BUF_ADDRS, BUF_FLAGS, BUF_COUNT };

typedef struct receiver {
  napi_env env;
  int fd;
  int family;
  uint32_t slots;
  uint32_t slot_bytes;

  /* JavaScript-owned buffers (kept alive by buffer_refs until the wrapper is finalized). */
  uint8_t* data;
  uint32_t* lengths;
  uint16_t* ports;
  uint8_t* addrs;
  uint8_t* flags;
  napi_ref buffer_refs[BUF_COUNT];

  /* recvmmsg(2) bookkeeping, allocated once. */
  struct mmsghdr* msgs;
  struct iovec* iovs;
  peer_addr* names;
  unsigned char* ctrl;
  uint32_t dirty; /* messages the kernel wrote in the last call (their lengths need a reset) */

  napi_ref self_ref;     /* weak while idle, strong while polling (a running socket is not GC'd) */
  napi_ref callback_ref; /* onBatch while polling */
  napi_async_context async_ctx;
  napi_async_cleanup_hook_handle cleanup; /* removed once the poll handle is fully closed */

  uv_poll_t poll;
  uv_timer_t rest; /* pause between a drained queue and the next watch */
  uint64_t rest_ms; /* 0: never rest */
  int poll_inited; /* both handles initialised */
  int poll_closed; /* both handles closed (libuv is done with the memory inside r) */
  int handles_open;
  int polling;
  int closed;
  int finalized;
  int in_callback; /* JS references stay until the running napi_make_callback returns */

  /* Counters (doubles: they outgrow 2^32 on a long-running collector). */
  uint32_t kernel_drops; /* socket(7) SO_RXQ_OVFL: datagrams dropped since the socket was created */
  double datagrams;
  double batches;
  double truncated;
  double errors;
  double callback_errors;
} receiver;

/* ---------------------------------------------------------------------------------------- */
/* Error helpers                                                                             */
/* ---------------------------------------------------------------------------------------- */

#define NAPI_OK(env, call)                                                       \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      throw_last_napi_error(env, #call);                                         \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

static void throw_last_napi_error(napi_env env, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "scitags_recv: %s failed: %s", what,
           info && info->error_message ? info->error_message : "unknown Node-API error");
  napi_throw_error(env, NULL, msg);
}

/* Throws an Error whose code is the errno name (libuv's table: uv errors are -errno on Unix). */
static void throw_errno(napi_env env, int err, const char* context) {
  char msg[320];
  snprintf(msg, sizeof msg, "%s: %s", context, strerror(err));
  napi_throw_error(env, uv_err_name(-err), msg);
}

/* ---------------------------------------------------------------------------------------- */
/* Lifetime                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void free_receiver(receiver* r) {
  free(r->msgs);
  free(r->iovs);
  free(r->names);
  free(r->ctrl);
  free(r);
}

static void remove_cleanup_hook(receiver* r) {
  if (r->cleanup != NULL) {
    napi_remove_async_cleanup_hook(r->cleanup);
    r->cleanup = NULL;
  }
}

/* libuv is done with a handle; once with both may their memory (inside r) go away. */
static void on_poll_closed(uv_handle_t* handle) {
  receiver* r = (receiver*)handle->data;
  if (--r->handles_open > 0) return;
  r->poll_closed = 1;
  remove_cleanup_hook(r); /* lets a tearing-down environment finish */
  if (r->finalized) free_receiver(r);
}

static void release_js(receiver* r);

/* Stops polling and closes the socket. Idempotent. Safe inside the onBatch callback. */
static void close_receiver(receiver* r) {
  if (r->closed) return;
  r->closed = 1;
  if (r->poll_inited) {
    /* uv_close stops the watcher at once, so the fd may be closed right after (libuv's
     * uv_poll_t documentation: stop or close the handle before closing the descriptor). */
    uv_close((uv_handle_t*)&r->poll, on_poll_closed);
    uv_close((uv_handle_t*)&r->rest, on_poll_closed);
  }
  if (r->fd >= 0) {
    close(r->fd);
    r->fd = -1;
  }
  if (!r->in_callback) release_js(r);
}

/* Drops the strong self reference, the callback and the async context of a closed receiver. */
static void release_js(receiver* r) {
  napi_env env = r->env;
  if (r->polling) {
    r->polling = 0;
    napi_reference_unref(env, r->self_ref, NULL);
  }
  if (r->callback_ref != NULL) {
    napi_delete_reference(env, r->callback_ref);
    r->callback_ref = NULL;
  }
  if (r->async_ctx != NULL) {
    napi_async_destroy(env, r->async_ctx);
    r->async_ctx = NULL;
  }
}

/* The environment (a worker, or the main thread at exit) is going away. */
static void on_env_cleanup(napi_async_cleanup_hook_handle handle, void* arg) {
  receiver* r = (receiver*)arg;
  r->cleanup = handle;
  close_receiver(r);
  /* Without a poll handle nothing is pending; otherwise on_poll_closed removes the hook. */
  if (!r->poll_inited) remove_cleanup_hook(r);
}

static void finalize_receiver(napi_env env, void* data, void* hint) {
  (void)hint;
  receiver* r = (receiver*)data;
  r->finalized = 1;
  close_receiver(r);
  for (int i = 0; i < BUF_COUNT; i++) {
    if (r->buffer_refs[i] != NULL) napi_delete_reference(env, r->buffer_refs[i]);
    r->buffer_refs[i] = NULL;
  }
  if (r->self_ref != NULL) napi_delete_reference(env, r->self_ref);
  r->self_ref = NULL;
  if (!r->poll_inited || r->poll_closed) {
    remove_cleanup_hook(r);
    free_receiver(r);
  }
  /* else: on_poll_closed frees r */
}

/* ---------------------------------------------------------------------------------------- */
/* Receiving                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Writes the source as 16 octets; IPv4 as the IPv4-mapped ::ffff:a.b.c.d (RFC 4291 2.5.5.2). */
static void store_peer(receiver* r, uint32_t i, const peer_addr* a) {
  uint8_t* out = r->addrs + (size_t)i * 16;
  if (a->sa.sa_family == AF_INET6) {
    memcpy(out, &a->v6.sin6_addr, 16);
    r->ports[i] = ntohs(a->v6.sin6_port);
  } else if (a->sa.sa_family == AF_INET) {
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, &a->v4.sin_addr, 4);
    r->ports[i] = ntohs(a->v4.sin_port);
  } else {
    memset(out, 0, 16);
    r->ports[i] = 0;
  }
}

/* One recvmmsg(2) call. Returns the message count, 0 when the queue is empty, -1 on error. */
static int receive_batch(receiver* r) {
  /* The kernel rewrites msg_namelen, msg_controllen and msg_flags of the messages it fills. */
  for (uint32_t i = 0; i < r->dirty; i++) {
    struct msghdr* h = &r->msgs[i].msg_hdr;
    h->msg_namelen = sizeof(peer_addr);
    h->msg_controllen = CTRL_BYTES;
    h->msg_flags = 0;
  }
  r->dirty = 0;
  int n;
  do {
    /* recvmmsg(2): MSG_DONTWAIT returns what is queued now instead of waiting for vlen. */
    n = recvmmsg(r->fd, r->msgs, r->slots, MSG_DONTWAIT, NULL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    r->errors++;
    r->dirty = r->slots; /* do not rely on which headers the failed call touched */
    return -1;
  }
  r->dirty = (uint32_t)n;
  for (int k = 0; k < n; k++) {
    uint32_t i = (uint32_t)k;
    struct msghdr* h = &r->msgs[i].msg_hdr;
    r->lengths[i] = r->msgs[i].msg_len;
    uint8_t f = 0;
    if (h->msg_flags & MSG_TRUNC) {
      f |= FLAG_TRUNCATED;
      r->truncated++;
    }
    r->flags[i] = f;
    store_peer(r, i, &r->names[i]);
    if (h->msg_controllen > 0) {
      for (struct cmsghdr* c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          uint32_t drops;
          memcpy(&drops, CMSG_DATA(c), sizeof drops);
          /* A running total at enqueue time (socket(7)); the newest is the largest. */
          if (drops > r->kernel_drops) r->kernel_drops = drops;
        }
      }
    }
  }
  r->datagrams += n;
  r->batches++;
  return n;
}

/*
 * The kernel writes into the JavaScript-owned buffers through raw pointers. JavaScript can
 * detach an ArrayBuffer (ArrayBuffer.prototype.transfer, postMessage with a transfer list);
 * writing after that would corrupt memory, so every readiness event checks first.
 */
static bool buffers_intact(receiver* r) {
  void* expect[BUF_COUNT] = {r->data, NULL, r->lengths, r->ports, r->addrs, r->flags};
  for (int i = 0; i < BUF_COUNT; i++) {
    if (expect[i] == NULL) continue; /* offsets: written once, never again */
    napi_value v;
    void* data = NULL;
    size_t length = 0;
    if (napi_get_reference_value(r->env, r->buffer_refs[i], &v) != napi_ok || v == NULL ||
        napi_get_typedarray_info(r->env, v, NULL, &length, &data, NULL, NULL) != napi_ok || data != expect[i] ||
        length == 0) {
      return false;
    }
  }
  return true;
}

static void on_readable(uv_poll_t* handle, int status, int events);

/* The rest is over: watch the socket again. */
static void on_rested(uv_timer_t* handle) {
  receiver* r = (receiver*)handle->data;
  if (r->closed || !r->polling) return;
  if (uv_poll_start(&r->poll, UV_READABLE, on_readable) != 0) r->errors++;
}

static void on_readable(uv_poll_t* handle, int status, int events) {
  (void)events;
  receiver* r = (receiver*)handle->data;
  if (r->closed || !r->polling) return;
  if (status < 0) {
    r->errors++;
    return;
  }
  napi_env env = r->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value self = NULL;
  napi_value cb = NULL;
  napi_get_reference_value(env, r->self_ref, &self);
  napi_get_reference_value(env, r->callback_ref, &cb);
  if (self != NULL && cb != NULL && !buffers_intact(r)) {
    /* Stop for good, and say why as a thrown error would. */
    close_receiver(r);
    napi_value msg, err;
    if (napi_create_string_utf8(env, "scitags_recv: a batch buffer was detached; receiver closed", NAPI_AUTO_LENGTH,
                                &msg) == napi_ok &&
        napi_create_error(env, NULL, msg, &err) == napi_ok) {
      napi_fatal_exception(env, err);
    }
  } else if (self != NULL && cb != NULL) {
    int drained = 1;
    for (int b = 0; b < MAX_BATCHES_PER_EVENT && !r->closed; b++) {
      int n = receive_batch(r);
      if (n <= 0) break;
      napi_value argv[1];
      napi_value result;
      napi_create_uint32(env, (uint32_t)n, &argv[0]);
      /* napi_make_callback (not napi_call_function): runs process.nextTick and microtasks
       * queued by the callback, as a node:dgram 'message' listener would see them. */
      r->in_callback = 1;
      napi_status st = napi_make_callback(env, r->async_ctx, self, cb, 1, argv, &result);
      r->in_callback = 0;
      if (st != napi_ok) {
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (pending) {
          napi_value err;
          napi_get_and_clear_last_exception(env, &err);
          r->callback_errors++;
          /* Same as a throwing 'message' listener: 'uncaughtException', never abort(). */
          napi_fatal_exception(env, err);
        }
        break;
      }
      /* A short batch means the queue was empty: skip the call that would say EAGAIN. */
      if ((uint32_t)n < r->slots) break;
      if (b == MAX_BATCHES_PER_EVENT - 1) drained = 0; /* still busy: come back at once */
    }
    if (r->rest_ms > 0 && drained && !r->closed && r->polling) {
      uv_poll_stop(&r->poll);
      uv_timer_start(&r->rest, on_rested, r->rest_ms, 0);
    }
  }
  if (r->closed) release_js(r); /* close() was called from inside onBatch */
  napi_close_handle_scope(env, scope);
}

/* ---------------------------------------------------------------------------------------- */
/* Socket set-up                                                                             */
/* ---------------------------------------------------------------------------------------- */

/* Parses an IP literal ("0.0.0.0", "::", "fe80::1%eth0"). Returns 0 or an errno. */
static int parse_bind(const char* text, uint32_t port, peer_addr* out, socklen_t* len) {
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, text, &out->v4.sin_addr) == 1) {
    out->v4.sin_family = AF_INET;
    out->v4.sin_port = htons((uint16_t)port);
    *len = sizeof out->v4;
    return 0;
  }
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (strlen(text) >= sizeof host) return EINVAL;
  strcpy(host, text);
  char* scope = strchr(host, '%');
  if (scope != NULL) *scope++ = '\0';
  if (inet_pton(AF_INET6, host, &out->v6.sin6_addr) != 1) return EINVAL;
  out->v6.sin6_family = AF_INET6;
  out->v6.sin6_port = htons((uint16_t)port);
  if (scope != NULL) {
    unsigned idx = if_nametoindex(scope);
    if (idx == 0) {
      char* end;
      unsigned long v = strtoul(scope, &end, 10);
      if (*scope == '\0' || *end != '\0') return EINVAL;
      idx = (unsigned)v;
    }
    out->v6.sin6_scope_id = idx;
  }
  *len = sizeof out->v6;
  return 0;
}

static int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

/* Creates, configures and binds the socket. Returns the fd, or -1 with an exception thrown. */
static int open_socket(napi_env env, const char* address, uint32_t port, int32_t rcvbuf, bool reuse_port,
                       int* family_out) {
  peer_addr addr;
  socklen_t addr_len;
  char where[128];
  if (parse_bind(address, port, &addr, &addr_len) != 0) {
    char msg[200];
    snprintf(msg, sizeof msg, "bind address %.100s is not an IPv4 or IPv6 literal", address);
    napi_throw_type_error(env, "EINVAL", msg);
    return -1;
  }
  int family = addr.sa.sa_family;
  snprintf(where, sizeof where, family == AF_INET6 ? "[%.80s]:%u" : "%.80s:%u", address, port);
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  char ctx[200];
  if (fd < 0) {
    int err = errno;
    snprintf(ctx, sizeof ctx, "socket() for UDP %s", where);
    throw_errno(env, err, ctx);
    return -1;
  }
  /* ipv6(7) IPV6_V6ONLY=0: one socket for IPv4 (as ::ffff:a.b.c.d) and IPv6 peers. */
  if (family == AF_INET6 && set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0) != 0) goto fail_opt;
  /* socket(7) SO_REUSEPORT: several sockets (processes or workers) share the port. */
  if (reuse_port && set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0) goto fail_opt;
  if (rcvbuf > 0) {
    /* socket(7): SO_RCVBUFFORCE (CAP_NET_ADMIN) may exceed net.core.rmem_max; SO_RCVBUF is
     * capped by it. The kernel doubles either value for its bookkeeping overhead. */
    int forced = geteuid() == 0 && set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf) == 0;
    if (!forced && set_int(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf) != 0) goto fail_opt;
  }
  /* socket(7) SO_RXQ_OVFL (each datagram carrying the socket's drop count) is left off: the
   * per-message control message cost 3-4 % of the daemon's CPU at 100k datagrams/s (perf),
   * and the same count is read from /proc/net/udp at scrape time. */
  if (bind(fd, &addr.sa, addr_len) != 0) {
    int err = errno;
    close(fd);
    snprintf(ctx, sizeof ctx, "bind UDP %s (port %u)", where, port);
    throw_errno(env, err, ctx);
    return -1;
  }
  *family_out = family;
  return fd;

fail_opt: {
  int err = errno;
  close(fd);
  snprintf(ctx, sizeof ctx, "setsockopt on UDP %s", where);
  throw_errno(env, err, ctx);
  return -1;
}
}

/* ---------------------------------------------------------------------------------------- */
/* JavaScript bindings                                                                       */
/* ---------------------------------------------------------------------------------------- */

static bool get_typed(napi_env env, napi_value v, napi_typedarray_type want, size_t min_len, void** data,
                      const char* name) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type type;
  size_t length = 0;
  if (is && napi_get_typedarray_info(env, v, &type, &length, data, NULL, NULL) == napi_ok && type == want &&
      length >= min_len && *data != NULL) {
    return true;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "scitags_recv: %s must be a typed array of the right type and at least %zu elements", name,
           min_len);
  napi_throw_type_error(env, NULL, msg);
  return false;
}

static bool get_u32(napi_env env, napi_value v, uint32_t lo, uint32_t hi, uint32_t* out, const char* name) {
  if (napi_get_value_uint32(env, v, out) == napi_ok && *out >= lo && *out <= hi) return true;
  char msg[160];
  snprintf(msg, sizeof msg, "scitags_recv: %s must be an integer in [%u, %u]", name, lo, hi);
  napi_throw_range_error(env, NULL, msg);
  return false;
}

static napi_value set_number(napi_env env, napi_value obj, const char* key, double value) {
  napi_value v;
  if (napi_create_double(env, value, &v) != napi_ok) return NULL;
  if (napi_set_named_property(env, obj, key, v) != napi_ok) return NULL;
  return obj;
}

static napi_value receiver_new(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  napi_value self;
  NAPI_OK(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 12) {
    napi_throw_type_error(env, NULL, "scitags_recv: Receiver takes 12 arguments");
    return NULL;
  }
  char address[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t address_len = 0;
  if (napi_get_value_string_utf8(env, argv[0], address, sizeof address, &address_len) != napi_ok) {
    napi_throw_type_error(env, NULL, "scitags_recv: address must be a string");
    return NULL;
  }
  uint32_t port, rcvbuf, slots, slot_bytes;
  bool reuse_port = false;
  if (!get_u32(env, argv[1], 0, 65535, &port, "port")) return NULL;
  if (!get_u32(env, argv[2], 0, INT32_MAX, &rcvbuf, "receiveBufferBytes")) return NULL;
  if (napi_get_value_bool(env, argv[3], &reuse_port) != napi_ok) {
    napi_throw_type_error(env, NULL, "scitags_recv: reusePort must be a boolean");
    return NULL;
  }
  if (!get_u32(env, argv[4], 1, MAX_SLOTS, &slots, "slots")) return NULL;
  if (!get_u32(env, argv[5], 1, MAX_SLOT_BYTES, &slot_bytes, "slotBytes")) return NULL;

  void* bufs[BUF_COUNT];
  static const napi_typedarray_type types[BUF_COUNT] = {napi_uint8_array,  napi_uint32_array, napi_uint32_array,
                                                        napi_uint16_array, napi_uint8_array,  napi_uint8_array};
  static const char* names[BUF_COUNT] = {"data", "offsets", "lengths", "ports", "addrs", "flags"};
  size_t mins[BUF_COUNT] = {(size_t)slots * slot_bytes, slots, slots, slots, (size_t)slots * 16, slots};
  for (int i = 0; i < BUF_COUNT; i++) {
    if (!get_typed(env, argv[6 + i], types[i], mins[i], &bufs[i], names[i])) return NULL;
  }

  receiver* r = calloc(1, sizeof *r);
  if (r == NULL) {
    napi_throw_error(env, "ENOMEM", "scitags_recv: out of memory");
    return NULL;
  }
  r->env = env;
  r->fd = -1;
  r->slots = slots;
  r->slot_bytes = slot_bytes;
  r->data = bufs[BUF_DATA];
  r->lengths = bufs[BUF_LENGTHS];
  r->ports = bufs[BUF_PORTS];
  r->addrs = bufs[BUF_ADDRS];
  r->flags = bufs[BUF_FLAGS];
  r->msgs = calloc(slots, sizeof *r->msgs);
  r->iovs = calloc(slots, sizeof *r->iovs);
  r->names = calloc(slots, sizeof *r->names);
  r->ctrl = calloc(slots, CTRL_BYTES);
  if (r->msgs == NULL || r->iovs == NULL || r->names == NULL || r->ctrl == NULL) {
    free_receiver(r);
    napi_throw_error(env, "ENOMEM", "scitags_recv: out of memory");
    return NULL;
  }
  /* Fixed slots: message i always lands at i * slotBytes. */
  uint32_t* offsets = bufs[BUF_OFFSETS];
  for (uint32_t i = 0; i < slots; i++) {
    offsets[i] = i * slot_bytes;
    r->iovs[i].iov_base = r->data + (size_t)i * slot_bytes;
    r->iovs[i].iov_len = slot_bytes;
    struct msghdr* h = &r->msgs[i].msg_hdr;
    h->msg_name = &r->names[i];
    h->msg_namelen = sizeof(peer_addr);
    h->msg_iov = &r->iovs[i];
    h->msg_iovlen = 1;
    h->msg_control = r->ctrl + (size_t)i * CTRL_BYTES;
    h->msg_controllen = CTRL_BYTES;
  }

  int family = 0;
  r->fd = open_socket(env, address, port, (int32_t)rcvbuf, reuse_port, &family);
  if (r->fd < 0) {
    free_receiver(r);
    return NULL;
  }
  r->family = family;

  /* Bound port (port 0 asks the kernel for one) and the buffer the kernel granted. */
  peer_addr local;
  socklen_t local_len = sizeof local;
  int granted = 0;
  socklen_t granted_len = sizeof granted;
  if (getsockname(r->fd, &local.sa, &local_len) != 0 ||
      getsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &granted, &granted_len) != 0) {
    int err = errno;
    close(r->fd);
    free_receiver(r);
    throw_errno(env, err, "getsockname/getsockopt");
    return NULL;
  }
  uint32_t bound_port = ntohs(family == AF_INET6 ? local.v6.sin6_port : local.v4.sin_port);
  {
    uint64_t holds = (uint64_t)(granted > 0 ? granted : 0) / REST_TRUESIZE / REST_RATE_PER_MS;
    r->rest_ms = holds > REST_MAX_MS ? REST_MAX_MS : holds;
  }

  if (napi_wrap(env, self, r, finalize_receiver, NULL, &r->self_ref) != napi_ok) {
    close(r->fd);
    free_receiver(r);
    throw_last_napi_error(env, "napi_wrap");
    return NULL;
  }
  /* From here on the finalizer owns r. */
  for (int i = 0; i < BUF_COUNT; i++) NAPI_OK(env, napi_create_reference(env, argv[6 + i], 1, &r->buffer_refs[i]));
  NAPI_OK(env, napi_add_async_cleanup_hook(env, on_env_cleanup, r, &r->cleanup));
  if (set_number(env, self, "port", bound_port) == NULL) return NULL;
  if (set_number(env, self, "receiveBufferBytes", granted) == NULL) return NULL;
  if (set_number(env, self, "family", family == AF_INET6 ? 6 : 4) == NULL) return NULL;
  return self;
}

static receiver* unwrap(napi_env env, napi_callback_info info, size_t* argc, napi_value* argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  void* r = NULL;
  if (napi_unwrap(env, self, &r) != napi_ok || r == NULL) {
    napi_throw_type_error(env, NULL, "scitags_recv: not a Receiver");
    return NULL;
  }
  return (receiver*)r;
}

static napi_value receiver_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  receiver* r = unwrap(env, info, &argc, argv);
  if (r == NULL) return NULL;
  napi_valuetype t = napi_undefined;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "scitags_recv: start(onBatch) needs a function");
    return NULL;
  }
  if (r->closed) {
    napi_throw_error(env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "scitags_recv: receiver is closed");
    return NULL;
  }
  if (r->polling) {
    napi_throw_error(env, "ERR_SOCKET_ALREADY_BOUND", "scitags_recv: receiver already started");
    return NULL;
  }
  uv_loop_t* loop = NULL;
  NAPI_OK(env, napi_get_uv_event_loop(env, &loop));
  napi_value self = NULL;
  NAPI_OK(env, napi_get_reference_value(env, r->self_ref, &self));
  napi_value name;
  NAPI_OK(env, napi_create_string_utf8(env, "scitags_recv", NAPI_AUTO_LENGTH, &name));
  NAPI_OK(env, napi_async_init(env, self, name, &r->async_ctx));
  NAPI_OK(env, napi_create_reference(env, argv[0], 1, &r->callback_ref));
  if (!r->poll_inited) {
    int rc = uv_poll_init(loop, &r->poll, r->fd);
    if (rc != 0) {
      throw_errno(env, -rc, "uv_poll_init");
      return NULL;
    }
    rc = uv_timer_init(loop, &r->rest);
    if (rc != 0) {
      uv_close((uv_handle_t*)&r->poll, NULL);
      throw_errno(env, -rc, "uv_timer_init");
      return NULL;
    }
    r->poll.data = r;
    r->rest.data = r;
    r->handles_open = 2;
    r->poll_inited = 1;
  }
  int rc = uv_poll_start(&r->poll, UV_READABLE, on_readable);
  if (rc != 0) {
    throw_errno(env, -rc, "uv_poll_start");
    return NULL;
  }
  NAPI_OK(env, napi_reference_ref(env, r->self_ref, NULL));
  r->polling = 1;
  return NULL;
}

static napi_value receiver_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  receiver* r = unwrap(env, info, &argc, NULL);
  if (r != NULL) close_receiver(r);
  return NULL;
}

static napi_value receiver_stats(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  receiver* r = unwrap(env, info, &argc, NULL);
  if (r == NULL) return NULL;
  napi_value o;
  NAPI_OK(env, napi_create_object(env, &o));
  if (set_number(env, o, "kernelDrops", r->kernel_drops) == NULL) return NULL;
  if (set_number(env, o, "datagrams", r->datagrams) == NULL) return NULL;
  if (set_number(env, o, "batches", r->batches) == NULL) return NULL;
  if (set_number(env, o, "truncated", r->truncated) == NULL) return NULL;
  if (set_number(env, o, "errors", r->errors) == NULL) return NULL;
  if (set_number(env, o, "callbackErrors", r->callback_errors) == NULL) return NULL;
  return o;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor methods[] = {
      {"start", NULL, receiver_start, NULL, NULL, NULL, napi_default_method, NULL},
      {"close", NULL, receiver_close, NULL, NULL, NULL, napi_default_method, NULL},
      {"stats", NULL, receiver_stats, NULL, NULL, NULL, napi_default_method, NULL},
  };
  napi_value cls;
  NAPI_OK(env, napi_define_class(env, "Receiver", NAPI_AUTO_LENGTH, receiver_new, NULL,
                                 sizeof methods / sizeof methods[0], methods, &cls));
  NAPI_OK(env, napi_set_named_property(env, exports, "Receiver", cls));
  napi_value slot_bytes, max_slots;
  NAPI_OK(env, napi_create_uint32(env, 65536, &slot_bytes));
  NAPI_OK(env, napi_create_uint32(env, MAX_SLOTS, &max_slots));
  NAPI_OK(env, napi_set_named_property(env, exports, "defaultSlotBytes", slot_bytes));
  NAPI_OK(env, napi_set_named_property(env, exports, "maxSlots", max_slots));
  return exports;
}
