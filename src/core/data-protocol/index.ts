export { checkValue, errorText, keyProblem } from './checks';
export { Counters } from './counters';
export { OpIds } from './op-ids';
export { PersistBuffer, type PersistSink } from './persist-buffer';
export { approxEncodedSize } from './size';
export { MAX_VALUE_DEPTH, maxAllocations, measureValue, utf8Length, valueError, walkValue, type ValueCheck } from './value';
