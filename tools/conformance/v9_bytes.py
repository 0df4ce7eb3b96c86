# One-off own reading of NetFlow v9 datagrams (RFC 3954 section 5): every flowset of every
# datagram, ignoring the header's count; sums IE 1 / IE 2 of data records; IE 34 options rate.
import subprocess, sys
f = sys.argv[1]
pl = subprocess.run(['tshark', '-r', f, '-T', 'fields', '-e', 'udp.payload'], capture_output=True, text=True).stdout.split()
tpl = {}; rate = 1; recs = octets = packets = 0; rates = set()
for h in pl:
    b = bytes.fromhex(h.replace(':', ''))
    p = 20
    while p + 4 <= len(b):
        fid, ln = int.from_bytes(b[p:p+2], 'big'), int.from_bytes(b[p+2:p+4], 'big')
        if ln < 4: break
        body = b[p+4:p+ln]
        if fid == 0:
            q = 0
            while q + 4 <= len(body):
                tid, cnt = int.from_bytes(body[q:q+2], 'big'), int.from_bytes(body[q+2:q+4], 'big'); q += 4
                fl = [(int.from_bytes(body[q+4*i:q+4*i+2], 'big'), int.from_bytes(body[q+4*i+2:q+4*i+4], 'big')) for i in range(cnt)]
                q += 4 * cnt; tpl[tid] = ('d', fl)
        elif fid == 1:
            tid, sl, ol = (int.from_bytes(body[i:i+2], 'big') for i in (0, 2, 4))
            fl = [(int.from_bytes(body[6+4*i:8+4*i], 'big'), int.from_bytes(body[8+4*i:10+4*i], 'big')) for i in range((sl + ol) // 4)]
            tpl[tid] = ('o', fl)
        elif fid in tpl:
            kind, fl = tpl[fid]; rl = sum(l for _, l in fl); q = 0
            while q + rl <= len(body) and rl > 0:
                vals = {}; r = q
                for t, l in fl:
                    vals.setdefault(t, int.from_bytes(body[r:r+l], 'big')); r += l
                q += rl
                if kind == 'o':
                    if vals.get(34): rate = vals[34]
                else:
                    recs += 1; octets += vals.get(1, 0); packets += vals.get(2, 0); rates.add(rate)
        p += ln
print(dict(records=recs, octets=octets, packets=packets, rates=sorted(rates)))
