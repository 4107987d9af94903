/** The HTTP server over an engine (`diffusion-search serve`). */
export { DiffusionServer, createServer, type ServerOptions } from './server';
