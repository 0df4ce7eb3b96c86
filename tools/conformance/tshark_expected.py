#!/usr/bin/env python3
"""Regenerates the tshark-derived expected values of the conformance suite.

    python3 tools/conformance/tshark_expected.py [--captures DIR] [--out DIR] [NAME ...]

For every capture in ../shared/external-captures (catalog.json), tshark 4.0 decodes the
datagrams (PDML) and this script reads the records out of its tree: it never imports or runs
the collector, so the numbers are an independent opinion. Writes
test/conformance/expected/<name>.json; hand-checked corrections from the origin projects' own
tests (test/conformance/overrides.json) are merged over the tshark numbers, each with its
source.

How tshark is driven, and its limits worked around:
- decode-as (`-d udp.port==N,cflow|sflow`) for the capture's destination port, so captures on
  non-standard ports (pmacct 9991/9992, akvorado 2100/8096/9990, pktvisor 2059) are decoded.
- tshark needs a template before the data that uses it, even inside one datagram (akvorado's
  data+templates capture). Each UDP frame is therefore fed twice in a row (tshark -Y udp to a
  classic pcap, then every record written twice) and only the second copy of each frame is
  read: its sets see every template of the datagram itself and of every earlier datagram.
  Data sets whose template never came before are reported as `tsharkNoTemplateSets`.
- tshark keeps the first definition of a template id; a capture that redefines one is noted.

What is counted (the rules of issue 12, spelled out):
- a flow record is an IPFIX / v9 data record of a (non-options) template, a v5 record, or an
  sFlow flow sample (format 1 or 3). Options records only feed sampling rates.
- volume per record, first family present wins (octets and packets separately):
  octets: IE 1 octetDeltaCount, IE 85 octetTotalCount, IE 23 postOctetDeltaCount,
  IE 231 + IE 232 (NSEL initiator + responder octets), IE 352 layer2OctetDeltaCount;
  packets: IE 2, IE 86, IE 24, IE 298 + IE 299. IE 315 (dataLinkFrameSection) records
  without counters count 1 packet of the frame's outer IP total length. sFlow: 1 packet of
  the raw header's frame_length, else sampled_ethernet's length, else sampled_ipv4/ipv6's.
- RFC 5103 biflow: octets / packets under PEN 29305 are a second flow record (the reverse
  direction) when non-zero, with the reverse flow label when the template has one.
- a record with no octets and no packets (no volume field, or zeros in the family chosen) is
  `noVolume`, not a record: it adds nothing to any sum. A template carrying IE 1/2 takes its
  volume from them even when another family is non-zero (logstash's 0length_fields capture
  has records with IE 1/2 = 0 and OUT_BYTES/OUT_PKTS = 32/1: counted as noVolume; unclear
  whether v9 OUT counters should count when the IN counters are 0).
- flow label: IE 31, the LAST occurrence in the record when a template carries it twice
  (innermost header); from an IE 315 frame or an sFlow raw header, the innermost IPv6 header
  (past VLAN tags, MPLS, a pseudowire control word, IPv6/IPv4-in-IPv6, VXLAN), none when the
  innermost IP header is IPv4.
- sampling rate per record: the record's own IE 34 / IE 50 / IE 310 / 309 (population / size)
  / IE 305+306 ((interval + space) / interval), else an options record of the same exporter and domain matched by samplerId
  (IE 48) or selectorId (IE 302), else an options record with a rate and no sampler id (the
  domain's rate), else the v5 header's sampling interval, else the sFlow sampling_rate,
  else 1. Options records apply from the datagram they arrive in onwards.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CAPTURES = os.path.join(os.path.dirname(REPO), 'shared', 'external-captures')
DEFAULT_OUT = os.path.join(REPO, 'test', 'conformance', 'expected')
OVERRIDES = os.path.join(REPO, 'test', 'conformance', 'overrides.json')

# Set ids (RFC 7011 section 3.3.2; RFC 3954 section 5.2 / 6.1): options template sets.
OPTIONS_TEMPLATE_SET_IDS = {'1', '3'}
# Volume families, in order of preference (issue 12), as tshark field names.
OCTET_FAMILIES = [
    ['cflow.octets'],  # IE 1 (v5 dOctets too)
    ['cflow.permanent_octets'],  # IE 85 octetTotalCount
    ['cflow.post_octets'],  # IE 23 postOctetDeltaCount
    ['cflow.initiator_octets', 'cflow.responder_octets'],  # IE 231 + 232
    ['cflow.layer2_octet_delta_count'],  # IE 352
]
PACKET_FAMILIES = [
    ['cflow.packets'],  # IE 2 (v5 dPkts too)
    ['cflow.permanent_packets'],  # IE 86 packetTotalCount
    ['cflow.post_packets'],  # IE 24 postPacketDeltaCount
    ['cflow.initiator_packets', 'cflow.responder_packets'],  # IE 298 + 299
]


def u16(b, p):
    return (b[p] << 8) | b[p + 1]


def u32(b, p):
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]


def walk_frame(b, start):
    """Own reading of a sampled frame: (outer IP total length or None, [(version, label)])."""
    ips = []
    outer_len = [None]

    def ip(p, ver):
        if ver == 4:
            if len(b) - p < 20:
                return
            if outer_len[0] is None:
                outer_len[0] = u16(b, p + 2)
            ips.append((4, None))
            ihl = (b[p] & 0x0F) * 4
            proto = b[p + 9]
            nxt = p + ihl
            if proto == 41:
                ip(nxt, 6)
            elif proto == 4:
                ip(nxt, 4)
            elif proto == 17 and len(b) - nxt >= 16 and u16(b, nxt + 2) == 4789:
                eth(nxt + 16)  # VXLAN (RFC 7348): UDP 8 + VXLAN 8, then Ethernet
            return
        if len(b) - p < 40:
            return
        if outer_len[0] is None:
            outer_len[0] = u16(b, p + 4) + 40
        ips.append((6, u32(b, p) & 0xFFFFF))
        nh = b[p + 6]
        q = p + 40
        # RFC 8200 section 4: hop-by-hop 0, routing 43 (SRv6 SRH), fragment 44, destination 60.
        while nh in (0, 43, 44, 60) and len(b) - q >= 8:
            nh2 = b[q]
            q += 8 if nh == 44 else (b[q + 1] + 1) * 8
            nh = nh2
        if nh == 41:
            ip(q, 6)
        elif nh == 4:
            ip(q, 4)
        elif nh == 17 and len(b) - q >= 16 and u16(b, q + 2) == 4789:
            eth(q + 16)

    def mpls(p):
        while len(b) - p >= 4:
            e = u32(b, p)
            p += 4
            if e & 0x100:  # bottom of stack (RFC 3032 section 2.1)
                break
        if len(b) - p < 1:
            return
        nib = b[p] >> 4
        if nib == 4:
            ip(p, 4)
        elif nib == 6:
            ip(p, 6)
        elif nib == 0:
            eth(p + 4)  # pseudowire control word (RFC 4385 section 3), then the customer frame

    def eth(p):
        if len(b) - p < 14:
            return
        t = u16(b, p + 12)
        p += 14
        while t in (0x8100, 0x88A8, 0x9100) and len(b) - p >= 4:
            t = u16(b, p + 2)
            p += 4
        if t == 0x0800:
            ip(p, 4)
        elif t == 0x86DD:
            ip(p, 6)
        elif t in (0x8847, 0x8848):
            mpls(p)

    if start == 'eth':
        eth(0)
    elif start == 'ipv4':
        ip(0, 4)
    elif start == 'ipv6':
        ip(0, 6)
    return outer_len[0], ips


def inner_label(ips):
    if not ips:
        return None
    ver, label = ips[-1]
    return label if ver == 6 else None


def to_int(s):
    s = s.strip()
    return int(s, 16) if s.startswith('0x') else int(s)


class Acc:
    def __init__(self):
        self.records = 0
        self.no_volume = 0
        self.octets = 0
        self.packets = 0
        self.octets_scaled = 0
        self.packets_scaled = 0
        self.labels = set()
        self.rates = set()
        self.data_records = 0
        self.options_records = 0
        self.reverse_records = 0
        self.no_template_sets = 0
        self.sflow_samples = 0
        self.layouts = {}
        self.redefined = set()

    def template(self, key, fs):
        """Remembers each template's layout; a different one for the same id is a redefinition,
        which tshark ignores (it keeps the first): those captures' numbers need a second look."""
        for t in children(fs):
            tid = next((c.get('show') for c in children(t) if c.get('name') == 'cflow.template_id'), None)
            if tid is None:
                continue
            layout = t.get('value')
            old = self.layouts.setdefault((key, tid), layout)
            if old != layout:
                self.redefined.add(int(tid))

    def add(self, octets, packets, rate, label):
        self.records += 1
        self.octets += octets
        self.packets += packets
        self.octets_scaled += octets * rate
        self.packets_scaled += packets * rate
        self.rates.add(rate)
        if label is not None:
            self.labels.add(label)


def children(el):
    return [c for c in el if c.tag == 'field']


def flat_fields(el):
    """(name, showname, show, value) of every field under el, in order."""
    out = []
    for f in el.iter('field'):
        out.append((f.get('name', ''), f.get('showname', '') or '', f.get('show', '') or '', f.get('value', '') or ''))
    return out


def record_rate_fields(fields):
    get = {}
    for name, _sn, show, _v in fields:
        get.setdefault(name, show)
    for n in ('cflow.sampling_interval', 'cflow.sampler_random_interval'):
        if n in get and to_int(get[n]) > 0:
            return to_int(get[n])
    # RFC 5477 section 8.2.4 / 8.2.5 (IE 309 samplingSize n, 310 samplingPopulation N):
    # random n-out-of-N sampling, IOS XR's options (pmacct 104 also sends 305 = 1 beside them).
    if 'cflow.sampling_population' in get and to_int(get.get('cflow.sampling_size', '0')) > 0:
        return to_int(get['cflow.sampling_population']) // to_int(get['cflow.sampling_size'])
    if 'cflow.sampling_packet_interval' in get:
        iv = to_int(get['cflow.sampling_packet_interval'])
        sp = to_int(get.get('cflow.sampling_packet_space', '0'))
        if iv > 0:
            return (iv + sp) // iv
    return None


def cflow_packet(proto, src, acc, opt_ids, opt_rates):
    fields = children(proto)
    version = next((f.get('show') for f in fields if f.get('name') == 'cflow.version'), None)
    domain = next((f.get('show') for f in fields if f.get('name') in ('cflow.source_id', 'cflow.od_id')), '0')
    key = (src, domain)
    if version == '5':
        hdr_rate = next((to_int(f.get('show')) for f in fields if f.get('name') == 'cflow.samplerate'), 0)
        for pdu in fields:
            if not pdu.get('show', '').startswith('pdu '):
                continue
            ff = flat_fields(pdu)
            o = sum(to_int(s) for n, _, s, _ in ff if n == 'cflow.octets')
            p = sum(to_int(s) for n, _, s, _ in ff if n == 'cflow.packets')
            acc.data_records += 1
            acc.add(o, p, hdr_rate if hdr_rate > 0 else 1, None)
        return
    sets = [fs for fs in fields if fs.get('show', '').startswith(('FlowSet', 'Set '))]  # v9 FlowSets, IPFIX Sets
    # Options sets first: a datagram is one unit, its options rates hold for all its data sets
    # (akvorado's data+templates datagram sends the sampler options after the data).
    set_id = lambda fs: next((c.get('show') for c in children(fs) if c.get('name') == 'cflow.flowset_id'), None)

    def ordered():
        yield from (fs for fs in sets if set_id(fs) in OPTIONS_TEMPLATE_SET_IDS)
        # Sorted only once the options templates above are learnt (a generator is lazy).
        rest = [fs for fs in sets if set_id(fs) not in OPTIONS_TEMPLATE_SET_IDS]
        yield from sorted(rest, key=lambda fs: 0 if set_id(fs) in opt_ids.get(key, set()) else 1)

    for fs in ordered():
        fid = next((c.get('show') for c in children(fs) if c.get('name') == 'cflow.flowset_id'), None)
        if fid in OPTIONS_TEMPLATE_SET_IDS or fid in ('0', '2'):
            acc.template(key, fs)
        if fid in OPTIONS_TEMPLATE_SET_IDS:
            for c in fs.iter('field'):
                if c.get('name') == 'cflow.template_id':
                    opt_ids.setdefault(key, set()).add(c.get('show'))
            continue
        if fid in ('0', '2'):
            continue
        for c in fs.iter('field'):
            if c.get('name') == 'cflow.no_template_found':
                acc.no_template_sets += 1
        is_options = fid in opt_ids.get(key, set())
        for rec in children(fs):
            if not rec.get('show', '').startswith('Flow '):
                continue
            ff = flat_fields(rec)
            if is_options:
                acc.options_records += 1
                rate = record_rate_fields(ff)
                if rate is not None:
                    sid = next((s for n, _, s, _ in ff if n in ('cflow.sampler_id', 'cflow.selector_id')), None)
                    opt_rates.setdefault(key, {})[sid] = rate
                continue
            acc.data_records += 1
            fwd = [(n, s, v) for n, sn, s, v in ff if '(Reverse' not in sn]
            rev = [(n, s, v) for n, sn, s, v in ff if '(Reverse' in sn]
            rate = record_rate_fields([(n, '', s, v) for n, s, v in fwd])
            if rate is None:
                sid = next((s for n, s, _ in fwd if n in ('cflow.sampler_id', 'cflow.selector_id')), None)
                table = opt_rates.get(key, {})
                rate = table.get(sid) if sid is not None and sid in table else table.get(None)
            if rate is None:
                rate = 1

            def volume(fam_list, fl):
                names = {n for n, _, _ in fl}
                for fam in fam_list:
                    if any(n in names for n in fam):
                        return sum(to_int(s) for n, s, _ in fl if n in fam)
                return None

            octets = volume(OCTET_FAMILIES, fwd)
            packets = volume(PACKET_FAMILIES, fwd)
            labels = [to_int(s) & 0xFFFFF for n, s, _ in fwd if n == 'cflow.ipv6flowlabel']
            label = labels[-1] if labels else None
            frames = [v for n, _, v in fwd if n == 'cflow.data_link_frame_section']
            if frames:
                outer, ips = walk_frame(bytes.fromhex(frames[0]), 'eth')
                if octets is None and packets is None and outer is not None:
                    octets, packets = outer, 1
                if label is None:
                    label = inner_label(ips)
            if not octets and not packets:
                acc.no_volume += 1
            else:
                acc.add(octets or 0, packets or 0, rate, label)
            ro = volume(OCTET_FAMILIES, rev) or 0
            rp = volume(PACKET_FAMILIES, rev) or 0
            if ro or rp:
                rl = [to_int(s) & 0xFFFFF for n, s, _ in rev if n == 'cflow.ipv6flowlabel']
                acc.reverse_records += 1
                acc.add(ro, rp, rate, rl[-1] if rl else None)


def sflow_packet(proto, acc):
    for sample in proto.iter('field'):
        show = sample.get('show', '')
        if not (show.startswith('Flow sample') or show.startswith('Expanded flow sample')):
            continue
        acc.sflow_samples += 1
        rate = 1
        recs = []
        for c in children(sample):
            if c.get('name') == 'sflow.flow_sample.sampling_rate' and to_int(c.get('show')) > 0:
                rate = to_int(c.get('show'))
            if c.get('name') == '' and c.get('value'):
                recs.append(bytes.fromhex(c.get('value')))
        frame_len = eth_len = ip_len = None
        label = None
        for r in recs:
            if len(r) < 8:
                continue
            fmt = u32(r, 0)
            d = r[8:]
            if fmt == 1 and len(d) >= 16:  # sFlow v5 section 5.2 sampled_header
                hp, frame_len, hl = u32(d, 0), u32(d, 4), u32(d, 12)
                start = {1: 'eth', 11: 'ipv4', 12: 'ipv6'}.get(hp)
                if start:
                    _o, ips = walk_frame(d[16 : 16 + hl], start)
                    label = inner_label(ips)
            elif fmt == 2 and len(d) >= 4:  # sampled_ethernet: length of the MAC packet
                eth_len = u32(d, 0)
            elif fmt in (3, 4) and len(d) >= 4:  # sampled_ipv4 / sampled_ipv6: IP length
                ip_len = u32(d, 0)
        octets = frame_len if frame_len is not None else eth_len if eth_len is not None else ip_len
        acc.add(octets or 0, 1, rate, label)


def double_frames(src, dst):
    """Writes every frame of a classic pcap twice in a row (frame 2k is the copy of 2k-1)."""
    data = open(src, 'rb').read()
    endian = 'little' if data[:4] in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1') else 'big'
    out = [data[:24]]
    p = 24
    while p + 16 <= len(data):
        n = int.from_bytes(data[p + 8 : p + 12], endian)
        rec = data[p : p + 16 + n]
        out += [rec, rec]
        p += 16 + n
    open(dst, 'wb').write(b''.join(out))


def run(path, protocol):
    ports = subprocess.run(['tshark', '-r', path, '-T', 'fields', '-e', 'udp.dstport'], capture_output=True, text=True, check=True).stdout
    dports = sorted({line.split(',')[0] for line in ports.split() if line})
    dissector = 'sflow' if protocol == 'sflow' else 'cflow'
    decode_as = []
    for p in dports:
        decode_as += ['-d', f'udp.port=={p},{dissector}']
    with tempfile.TemporaryDirectory() as tmp:
        plain = os.path.join(tmp, 'plain.pcap')
        twice = os.path.join(tmp, 'twice.pcap')
        # UDP only (pmacct's captures carry BMP / BGP sessions too), as classic pcap.
        subprocess.run(['tshark', '-r', path, '-Y', 'udp', '-F', 'pcap', '-w', plain], check=True, capture_output=True)
        double_frames(plain, twice)
        cmd = ['tshark', '-r', twice, '-T', 'pdml', '-Y', dissector, *decode_as]
        xml = subprocess.run(cmd, capture_output=True, check=True).stdout
    acc = Acc()
    opt_ids, opt_rates = {}, {}
    root = ET.fromstring(xml)
    for pkt in root.iter('packet'):
        protos = [p for p in pkt if p.tag == 'proto']
        num = next(int(f.get('show')) for p in protos if p.get('name') == 'frame' for f in p.iter('field') if f.get('name') == 'frame.number')
        # Odd frames are the first copies: they only prime tshark's templates.
        if num % 2 == 1:
            continue
        src = next((f.get('show') for p in protos if p.get('name') in ('ip', 'ipv6') for f in p if f.get('name') in ('ip.src', 'ipv6.src')), '')
        for p in protos:
            if p.get('name') == 'cflow':
                cflow_packet(p, src, acc, opt_ids, opt_rates)
            elif p.get('name') == 'sflow':
                sflow_packet(p, acc)
    cmdline = ' '.join(['tshark -r', f'{os.path.basename(path)}-with-every-frame-twice', '-T pdml -Y', dissector, *decode_as])
    return acc, cmdline


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--captures', default=DEFAULT_CAPTURES)
    ap.add_argument('--out', default=DEFAULT_OUT)
    ap.add_argument('names', nargs='*')
    a = ap.parse_args()
    catalog = json.load(open(os.path.join(a.captures, 'catalog.json')))
    overrides = json.load(open(OVERRIDES)) if os.path.exists(OVERRIDES) else {}
    version = subprocess.run(['tshark', '-v'], capture_output=True, text=True).stdout.splitlines()[0]
    os.makedirs(a.out, exist_ok=True)
    for entry in catalog:
        name = entry['name']
        if a.names and name not in a.names:
            continue
        path = os.path.join(a.captures, name + '.pcap')
        acc, cmdline = run(path, entry['protocol'])
        doc = {
            'name': name,
            'protocol': entry['protocol'],
            'records': acc.records,
            'noVolume': acc.no_volume,
            'octets': acc.octets,
            'packets': acc.packets,
            'octetsScaled': acc.octets_scaled,
            'packetsScaled': acc.packets_scaled,
            'flowLabels': sorted(acc.labels),
            'samplingRates': sorted(acc.rates),
            'tshark': {
                'dataRecords': acc.data_records,
                'reverseRecords': acc.reverse_records,
                'optionsRecords': acc.options_records,
                'sflowFlowSamples': acc.sflow_samples,
                'noTemplateSets': acc.no_template_sets,
                'redefinedTemplates': sorted(acc.redefined),
            },
            'source': {
                'all': f'{version}; {cmdline}; read by tools/conformance/tshark_expected.py (rules in its docstring)',
            },
        }
        if acc.redefined:
            doc['source']['redefinedTemplates'] = (
                'the capture redefines templates ' + ', '.join(map(str, sorted(acc.redefined))) + ' with another layout; tshark keeps the first '
                'definition, so records after the redefinition may be misread: check them by other means'
            )
        ov = overrides.get(name)
        if ov:
            for k, v in ov.items():
                if k == 'source':
                    doc['source'].update(v)
                else:
                    doc[k] = v
        with open(os.path.join(a.out, name + '.json'), 'w') as f:
            json.dump(doc, f, indent=2)
            f.write('\n')
        print(f"{name}: records {acc.records} noVolume {acc.no_volume} octets {acc.octets} packets {acc.packets} rates {sorted(acc.rates)} labels {len(acc.labels)} noTemplateSets {acc.no_template_sets}")


if __name__ == '__main__':
    sys.exit(main())
