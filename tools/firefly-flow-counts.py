#!/usr/bin/env python3
"""Counts firefly flows per experiment id from a relay's log, independently of the collector.

Usage:
  python3 tools/firefly-flow-counts.py ../shared/external-fireflies/firefly-collector_test_data_2022.log.tgz
  python3 tools/firefly-flow-counts.py FILE --receive-times=logged

FILE is a syslog log (one firefly per line, JSON from the first `{`), or a .tgz / .tar.gz
holding one. Prints, per experiment id, what GET /api/v1/fireflies must show when the file is
replayed over UDP in order: flows started, ended, ended without a start, expired, and the
duplicates (these last are a flow-table counter, not in the API).

This is written from the flow-table rules as the README states them ("Fireflies: flow
tracking"), not from the TypeScript, so that a test comparing the API with its output checks
the collector against the rules rather than against itself:

- a flow is its 5-tuple (protocol, both addresses, both ports) in either direction; addresses
  in RFC 5952 form (Python's ipaddress, `compressed`), as the collector keeps them;
- `start` of an unknown 5-tuple opens a flow (started). A start of a live flow is a duplicate,
  unless its start-time is more than the duplicate window (60 s) after the live flow's: then
  the old flow is expired and a new one starts (started);
- `ongoing` of an unknown 5-tuple opens a flow without a start (none in the 2022 file);
- `end` of a live flow ends it (ended, without a start when only ongoing opened it); an end
  with no live flow is ended without a start. Every end's 5-tuple is remembered (with its
  flow's start-time and its end-time) for the duplicate window of receive time: while
  remembered, an ongoing is a duplicate, so is a start whose start-time is at most the window
  after the remembered one, and so is an end whose start-time and end-time are each at most
  the window after the remembered ones (a later end is a new end without a start);
- a flow idle for the flow timeout (a day of receive time) is expired.

Times of the firefly (start-time) are read to the millisecond (fractions truncated), as the
collector reads them. Receive time is the collector's clock. `--receive-times=replay` (the
default) is a fast replay: every firefly arrives within seconds, so the remembered ends never
lapse and nothing idles for a day. `--receive-times=logged` takes the RFC 5424 timestamp of
each line as its receive time instead, to see what the same stream counts live.
"""

import argparse
import datetime
import ipaddress
import io
import json
import re
import sys
import tarfile
from collections import defaultdict

WINDOW_MS = 60_000
TIMEOUT_MS = 86_400_000
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def ms_of(text):
    """RFC 3339 text to epoch ms, fractions truncated to the millisecond (no offset: UTC)."""
    dt = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    d = dt - EPOCH
    return (d.days * 86_400 + d.seconds) * 1000 + d.microseconds // 1000


def read_lines(path):
    if path.endswith('.tgz') or path.endswith('.tar.gz'):
        with tarfile.open(path, 'r:gz') as tar:
            member = next(m for m in tar.getmembers() if m.isfile())
            data = tar.extractfile(member).read()
        return io.TextIOWrapper(io.BytesIO(data), encoding='utf-8').read().splitlines()
    with open(path, encoding='utf-8') as f:
        return f.read().splitlines()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('file')
    ap.add_argument('--receive-times', choices=['replay', 'logged'], default='replay')
    args = ap.parse_args()

    counts = defaultdict(lambda: defaultdict(int))  # experiment id -> counter -> n
    live = {}  # key -> {'exp', 'start_ms', 'started', 'last_ms'}
    ended = {}  # key -> {'start_ms', 'at_ms'} (insertion order = end order)
    skipped = 0
    renamed = 0
    fireflies = 0

    for line in read_lines(args.file):
        if not line:
            continue
        brace = line.find('{')
        if brace < 0:
            skipped += 1  # not a firefly (the relay's statistics line)
            continue
        doc = json.loads(line[brace:])
        fireflies += 1
        life, fid, ctx = doc['flow-lifecycle'], doc['flow-id'], doc['context']
        state = life['state']
        start_ms = ms_of(life['start-time'])
        end_ms = ms_of(life['end-time']) if 'end-time' in life else None
        exp = ctx['experiment-id']
        ends = []
        for ip, port in ((fid['src-ip'], fid['src-port']), (fid['dst-ip'], fid['dst-port'])):
            canonical = ipaddress.ip_address(ip).compressed
            renamed += canonical != ip
            ends.append((canonical, port))
        key = (fid['protocol'], tuple(sorted(ends)))

        if args.receive_times == 'replay':
            now = 0
        else:
            # `1 TIMESTAMP HOST ...` after the relay's `Mon DD HH:MM:SS HOST ` prefix.
            now = ms_of(re.search(r' 1 (\d{4}-\S+) ', line[:brace]).group(1))
        # The collector's per-second tick: idle flows expire, remembered ends lapse.
        for k in [k for k, f in live.items() if now - f['last_ms'] >= TIMEOUT_MS]:
            counts[live.pop(k)['exp']]['expired'] += 1
        for k in [k for k, e in ended.items() if now - e['at_ms'] >= WINDOW_MS]:
            del ended[k]

        flow = live.get(key)
        if state == 'start':
            if flow is not None and start_ms - flow['start_ms'] <= WINDOW_MS:
                flow['last_ms'] = now
                if flow['started']:
                    counts[exp]['duplicates'] += 1
                else:
                    flow['started'] = True
                    flow['start_ms'] = start_ms
                    counts[flow['exp']]['started'] += 1
                continue
            if flow is not None:
                # The 5-tuple reused while the old flow never ended.
                counts[flow['exp']]['expired'] += 1
                del live[key]
            else:
                e = ended.get(key)
                if e is not None and start_ms - e['start_ms'] <= WINDOW_MS:
                    counts[exp]['duplicates'] += 1
                    continue
                ended.pop(key, None)
            live[key] = {'exp': exp, 'start_ms': start_ms, 'started': True, 'last_ms': now}
            counts[exp]['started'] += 1
        elif state == 'ongoing':
            if flow is not None:
                flow['last_ms'] = now
            elif key in ended:
                counts[exp]['duplicates'] += 1
            else:
                live[key] = {'exp': exp, 'start_ms': start_ms, 'started': False, 'last_ms': now}
        else:  # end
            if flow is not None:
                del live[key]
                counts[flow['exp']]['ended'] += 1
                if not flow['started']:
                    counts[flow['exp']]['withoutStart'] += 1
                remembered = flow['start_ms']
            elif key in ended and start_ms - ended[key]['start_ms'] <= WINDOW_MS and (
                end_ms is None or ended[key]['end_ms'] is None or end_ms - ended[key]['end_ms'] <= WINDOW_MS
            ):
                counts[exp]['duplicates'] += 1
                continue
            else:
                counts[exp]['ended'] += 1
                counts[exp]['withoutStart'] += 1
                remembered = start_ms
            ended.pop(key, None)
            ended[key] = {'start_ms': remembered, 'end_ms': end_ms, 'at_ms': now}

    print(f'fireflies {fireflies}, other lines {skipped}, addresses rewritten to RFC 5952 form {renamed}, '
          f'receive times {args.receive_times}, still live at the end {len(live)}')
    fields = ['started', 'ended', 'withoutStart', 'expired', 'duplicates']
    print('experiment ' + ' '.join(fields))
    for exp in sorted(counts):
        print(f'{exp} ' + ' '.join(str(counts[exp][f]) for f in fields))
    print('all ' + ' '.join(str(sum(c[f] for c in counts.values())) for f in fields))


if __name__ == '__main__':
    sys.exit(main())
