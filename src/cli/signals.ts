/**
 * SIGINT and SIGTERM in the CLI: an interruption ends with an exit code (128 + the signal's
 * number: 130, 143), never a death by the signal. ./index traps them before loading the rest,
 * so a signal that arrives while Node is still loading exits at once with the code. A command with handlers of
 * its own (generate, serve, worker) takes the signal over: this one then steps aside, and acts
 * again when the command has removed its handlers.
 */
import os from 'node:os';

export const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** 130 for SIGINT, 143 for SIGTERM. */
export const exitCodeOf = (sig: NodeJS.Signals): number => 128 + (os.constants.signals[sig] ?? 0);

function fallback(sig: NodeJS.Signals): void {
  if (process.listenerCount(sig) > 1) return; // a command handles it
  process.exit(exitCodeOf(sig));
}

/** Installs the fallback handlers (once): ./index calls it before loading anything else. */
export function trapSignals(): void {
  for (const sig of SIGNALS) if (!process.listeners(sig).includes(fallback)) process.on(sig, fallback);
}
