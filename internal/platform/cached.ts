/**
 * A value loaded at most once per `ttlMs`, the load shared by every caller
 * meanwhile (a storm of callers costs one load). A failed load is not kept.
 */
export function cachedFor<T>(ttlMs: number, load: () => Promise<T>): () => Promise<T> {
  let value: { promise: Promise<T>; at: number } | undefined;
  return () => {
    const now = Date.now();
    if (!value || now - value.at > ttlMs) {
      const promise = load();
      const entry = { promise, at: now };
      value = entry;
      promise.catch(() => {
        if (value === entry) value = undefined;
      });
    }
    return value.promise;
  };
}
