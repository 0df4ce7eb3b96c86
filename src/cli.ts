#!/usr/bin/env node
import { tuneJit } from './pipeline/jit-tuning.js';
import { VERSION } from './version.js';

const USAGE = `scitags-collector ${VERSION}: SciTags-aware IPFIX / NetFlow / sFlow collector

Usage:
  scitags-collector [serve] [options]        run the collector (the default command; see serve --help)
  scitags-collector ingest FILE.pcap [...]   decode captures, print per-experiment totals as JSON
                                             (--format goflow2: files of goflow2 -format=bin output)
  scitags-collector decode FILE.pcap [...]   print one JSON line per decoded record
  scitags-collector replay FILE.pcap --to HOST:PORT [--speed N|--rate PPS]
                                             re-send a capture's UDP payloads to a collector
  scitags-collector --help | --version
`;

// `decode ... | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const GLOBAL_FLAGS = new Set(['--help', '-h', '--version', '-V']);

async function main(argv: string[]): Promise<number> {
  // Before any command runs its decode path (pipeline/jit-tuning.ts says why).
  tuneJit();
  // serve is the default command, so its flags work without it (`scitags-collector
  // --dump-config`); unknown flags then fail in serve's parser, which names them.
  const first = argv[0];
  const [command = 'serve', ...rest] = first !== undefined && first.startsWith('-') && !GLOBAL_FLAGS.has(first) ? ['serve', ...argv] : argv;
  switch (command) {
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case '--version':
    case '-V':
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'ingest': {
      const { runIngest } = await import('./commands/ingest.js');
      return runIngest(rest);
    }
    case 'decode': {
      const { runDecode } = await import('./commands/decode.js');
      return runDecode(rest);
    }
    case 'replay': {
      const { runReplay } = await import('./commands/replay.js');
      return runReplay(rest);
    }
    case 'serve': {
      const { runServe } = await import('./commands/serve.js');
      return runServe(rest);
    }
    default:
      process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`scitags-collector: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
