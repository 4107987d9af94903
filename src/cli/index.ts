#!/usr/bin/env node
/** The diffusion-search command line. */
import { buildProgram } from './program';
import { runMain } from './run';

void runMain(buildProgram());
