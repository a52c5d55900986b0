/**
 * The KV editor's rule for telling a person's edits from live updates: the form remembers
 * the text it last loaded from the store (its baseline); it is dirty when the text differs,
 * and only a clean form follows changes made elsewhere.
 */
export interface FormBaseline {
  loadedKey: string | null;
  loadedText: string | null;
}

/** The form holds an edit: its text differs from what was loaded (or, with nothing loaded, is not empty). */
export function isDirty(base: FormBaseline, draft: string): boolean {
  return base.loadedText !== null ? draft !== base.loadedText : draft.trim() !== '';
}

/**
 * The baseline once a save of `text` under `key` succeeded, the form now holding `draft`.
 * While the form still shows the saved text, that text becomes the baseline, so the store's
 * reformatted copy replaces it when it arrives. The tab's own change event can arrive
 * before the save's reply, and the form may already show the store's copy of this key:
 * then the baseline is kept (taking the typed text as baseline would make the form look
 * edited, and it would stop following changes made elsewhere). Otherwise text typed since
 * the save stays an edit of this key, never overwritten by the store's copy.
 */
export function baselineAfterSave(base: FormBaseline, draft: string, key: string, text: string): FormBaseline {
  return draft !== text && base.loadedKey === key ? base : { loadedKey: key, loadedText: text };
}
