export { hash32, Ring } from './ring';
export { askedReplicas, DEFAULT_REPLICAS, majority, MAX_REPLICAS, Placement, viewOf } from './placement';
