/**
 * `?replicas=N`: the KV replica count a tab asks the cluster for. The cluster uses the
 * largest count any live tab asks for (core/placement `askedReplicas`, agreed through the
 * membership), so one tab opened with `?replicas=5` gives every key 5 copies while it is
 * there. Absent: the default (4). Anything but an integer 1..MAX_REPLICAS is refused with
 * a reason and the default is used.
 */
import { MAX_REPLICAS } from '../core/placement';

export function replicasParam(raw: string | null): { value?: number; problem?: string } {
  if (raw === null || raw.trim() === '') return {};
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < 1 || n > MAX_REPLICAS) {
    return { problem: `?replicas=${raw.slice(0, 20)} ignored: the replica count is an integer from 1 to ${MAX_REPLICAS}` };
  }
  return { value: n };
}
