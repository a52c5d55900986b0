export { hash32, Ring } from './ring';
export { Placement, viewOf } from './placement';
