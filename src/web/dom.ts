// The demo page's element lookup: a missing element is a broken page, said by its id.
export function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`demo: #${id} is missing from the page`);
  return e as T;
}
