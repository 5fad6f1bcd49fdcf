// Waiting without sleeps: the tests use the demo's poller (shipped code may not import test/).
export { waitFor } from '../../examples/demo/wait.ts';
