export { checkValue, errorText, keyProblem, type ValueCheck } from './checks';
export { Counters } from './counters';
export { OpIds } from './op-ids';
export { PersistBuffer, type PersistSink } from './persist-buffer';
export { approxEncodedSize } from './size';
