/*
 * Paced UDP sender for `npm run bench:peers` (test/bench/peers.ts compiles it with `cc -O2`).
 *
 *   sendmmsg DATAGRAM_FILE PORT RATE SECONDS [BATCH] [SOURCES]
 *
 * DATAGRAM_FILE holds datagrams, each as three big-endian u32 followed by the payload:
 *   length      payload bytes
 *   seq_offset  byte offset of the export's 32-bit sequence number in the payload
 *               (0xFFFFFFFF: the datagram has none to rewrite)
 *   seq_add     how far this datagram advances the sequence (IPFIX: its data records;
 *               NetFlow v9 and sFlow: 1)
 *   payload
 * They are sent round-robin (1, 2, ..., n, 1, 2, ...) from one connected socket to
 * 127.0.0.1:PORT, so the file's first datagrams (the templates) are re-sent once per cycle.
 * The sequence numbers are rewritten to keep counting up across cycles (one running counter,
 * starting at the first datagram's own value), so collectors see a clean stream rather than
 * a sequence jump at every cycle.
 *
 * Sending uses sendmmsg() in batches of at most BATCH (default 16) datagrams, paced against
 * CLOCK_MONOTONIC to RATE datagrams/s for SECONDS seconds: the target is round(RATE *
 * SECONDS) datagrams; a sender that falls behind catches up in batches of BATCH (never bigger
 * bursts). When ahead, it sleeps with clock_nanosleep until the next datagram is due.
 *
 * SOURCES (default 1) > 1 plays that many exporters: one socket per exporter bound to
 * 127.0.1.1, 127.0.1.2, ... (every 127/8 address is local on Linux), batches taken by the
 * sockets in turn, each socket cycling through the whole file (templates first) with its own
 * sequence numbers, so a collector sees SOURCES complete, independent exporters.
 *
 * Output, one line on stdout: "sent N errors E elapsed S per-source N1,N2,..." (S in seconds,
 * from the start to the last send; Ni: datagrams of source i, sent or failed, since each
 * source cycles through the file on its own). Exit status 0, or 2 on bad arguments / unreadable file / socket errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 64
#define MAX_SOURCES 64
#define MAX_DATAGRAM 65507
#define NO_SEQ 0xFFFFFFFFu

struct datagram {
  unsigned char *payload;
  uint32_t len;
  uint32_t seq_offset;
  uint32_t seq_add;
};

static uint32_t be32(const unsigned char *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

int main(int argc, char **argv) {
  if (argc < 5 || argc > 7) {
    fprintf(stderr, "usage: %s DATAGRAM_FILE PORT RATE SECONDS [BATCH] [SOURCES]\n", argv[0]);
    return 2;
  }
  const char *path = argv[1];
  int port = atoi(argv[2]);
  double rate = atof(argv[3]);
  double seconds = atof(argv[4]);
  int batch = argc >= 6 ? atoi(argv[5]) : 16;
  int nsrc = argc >= 7 ? atoi(argv[6]) : 1;
  if (port <= 0 || port > 65535 || rate <= 0 || seconds <= 0 || batch < 1 || batch > MAX_BATCH || nsrc < 1 || nsrc > MAX_SOURCES) {
    fprintf(stderr, "bad arguments (port 1..65535, rate > 0, seconds > 0, batch 1..%d, sources 1..%d)\n", MAX_BATCH, MAX_SOURCES);
    return 2;
  }

  /* Read the whole file, then index the datagrams. */
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 2;
  }
  if (fseek(f, 0, SEEK_END) != 0) {
    perror("fseek");
    return 2;
  }
  long size = ftell(f);
  rewind(f);
  unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
  if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
    fprintf(stderr, "%s: read failed\n", path);
    return 2;
  }
  fclose(f);
  size_t n = 0, cap = 64;
  struct datagram *dg = malloc(cap * sizeof *dg);
  for (long off = 0; off < size;) {
    if (off + 12 > size) {
      fprintf(stderr, "%s: truncated datagram header at offset %ld\n", path, off);
      return 2;
    }
    uint32_t len = be32(buf + off), seq_offset = be32(buf + off + 4), seq_add = be32(buf + off + 8);
    off += 12;
    if (len > MAX_DATAGRAM || off + (long)len > size || (seq_offset != NO_SEQ && (uint64_t)seq_offset + 4 > len)) {
      fprintf(stderr, "%s: bad datagram header (length %u, seq_offset %u) at offset %ld\n", path, len, seq_offset, off - 12);
      return 2;
    }
    if (n == cap) {
      cap *= 2;
      dg = realloc(dg, cap * sizeof *dg);
    }
    dg[n].payload = buf + off;
    dg[n].len = len;
    dg[n].seq_offset = seq_offset;
    dg[n].seq_add = seq_add;
    n++;
    off += len;
  }
  if (n == 0) {
    fprintf(stderr, "%s: no datagrams\n", path);
    return 2;
  }

  int fds[MAX_SOURCES];
  struct sockaddr_in to;
  memset(&to, 0, sizeof to);
  to.sin_family = AF_INET;
  to.sin_port = htons((uint16_t)port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int s = 0; s < nsrc; s++) {
    fds[s] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[s] < 0) {
      perror("socket");
      return 2;
    }
    int sndbuf = 4 * 1024 * 1024;
    setsockopt(fds[s], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (nsrc > 1) {
      struct sockaddr_in from;
      memset(&from, 0, sizeof from);
      from.sin_family = AF_INET;
      from.sin_addr.s_addr = htonl(0x7F000100u + (uint32_t)s + 1u); /* 127.0.1.(s+1) */
      if (bind(fds[s], (struct sockaddr *)&from, sizeof from) != 0) {
        perror("bind");
        return 2;
      }
    }
    if (connect(fds[s], (struct sockaddr *)&to, sizeof to) != 0) {
      perror("connect");
      return 2;
    }
  }

  /* The running sequence number starts at the first numbered datagram's own value. */
  uint32_t seq = 0;
  for (size_t i = 0; i < n; i++) {
    if (dg[i].seq_offset != NO_SEQ) {
      seq = be32(dg[i].payload + dg[i].seq_offset);
      break;
    }
  }
  /* One copy per batch slot, since a batch may hold the same datagram twice (with different
   * sequence numbers); the kernel has copied a datagram once sendmmsg() returns. */
  static unsigned char slot[MAX_BATCH][MAX_DATAGRAM];
  struct iovec iov[MAX_BATCH];
  struct mmsghdr msgs[MAX_BATCH];
  const uint64_t target = (uint64_t)(rate * seconds + 0.5);
  uint64_t sent = 0, errors = 0;
  size_t nexts[MAX_SOURCES] = {0}; /* per source: round-robin index of its next datagram */
  uint32_t seqs[MAX_SOURCES];
  for (int s = 0; s < nsrc; s++) seqs[s] = seq;
  uint64_t batches = 0;
  uint64_t per_source[MAX_SOURCES] = {0}; /* datagrams that took their slot, per source */
  const double t0 = now_s();
  double t_last = t0;
  /* pos = datagrams that took their slot in the schedule (sent + errors). */
  uint64_t pos = 0;
  while (pos < target) {
    double t = now_s();
    uint64_t due = (uint64_t)((t - t0) * rate);
    if (due > target) due = target;
    if (due <= pos) {
      /* Ahead of schedule: sleep until datagram number pos+1 is due. */
      sleep_until(t0 + (double)(pos + 1) / rate);
      continue;
    }
    uint64_t want = due - pos;
    int k = want > (uint64_t)batch ? batch : (int)want;
    const int src = (int)(batches++ % (uint64_t)nsrc);
    const int fd = fds[src];
    size_t next = nexts[src];
    seq = seqs[src];
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)k);
    for (int i = 0; i < k; i++) {
      const struct datagram *d = &dg[(next + (size_t)i) % n];
      if (d->seq_offset != NO_SEQ) {
        memcpy(slot[i], d->payload, d->len);
        unsigned char *q = slot[i] + d->seq_offset;
        q[0] = (unsigned char)(seq >> 24);
        q[1] = (unsigned char)(seq >> 16);
        q[2] = (unsigned char)(seq >> 8);
        q[3] = (unsigned char)seq;
        iov[i].iov_base = slot[i];
      } else {
        iov[i].iov_base = d->payload;
      }
      seq += d->seq_add;
      iov[i].iov_len = d->len;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int done = 0;
    while (done < k) {
      int r = sendmmsg(fd, msgs + done, (unsigned)(k - done), 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        /* ECONNREFUSED (nobody listening yet / any more), ENOBUFS, ...: count the datagram as
         * not sent and move on, so the round-robin order stays intact. */
        errors++;
        done++;
        pos++;
        per_source[src]++;
        next = (next + 1) % n;
        continue;
      }
      done += r;
      sent += (uint64_t)r;
      per_source[src] += (uint64_t)r;
      pos += (uint64_t)r;
      next = (next + (size_t)r) % n;
    }
    nexts[src] = next;
    seqs[src] = seq;
    t_last = now_s();
  }
  printf("sent %llu errors %llu elapsed %.6f per-source", (unsigned long long)sent, (unsigned long long)errors, t_last - t0);
  for (int s = 0; s < nsrc; s++) printf("%c%llu", s == 0 ? ' ' : ',', (unsigned long long)per_source[s]);
  printf("\n");
  for (int s = 0; s < nsrc; s++) close(fds[s]);
  free(dg);
  free(buf);
  return 0;
}
