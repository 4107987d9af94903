#!/usr/bin/env node
/** The diffusion-search command line. */
// First: from here on SIGINT / SIGTERM exit with 130 / 143, even while the rest loads.
import { trapSignals } from './signals';
trapSignals();
import { buildProgram } from './program';
import { runMain } from './run';

void runMain(buildProgram());
