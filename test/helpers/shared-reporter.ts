// A vitest reporter that closes a run with one line: how many tests were skipped because ../shared (the real weight
// files, photos and benchmark images that are not part of the project) is absent, and in which files. Such tests sit
// in suites named with SHARED_TAG (test/helpers/shared.ts); everything a test can make itself it makes.
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import { SHARED_TAG } from './shared.js';

function needsShared(t: TestCase): boolean {
  for (let s: { name: string; parent?: unknown } | undefined = t; s && 'name' in s; s = (s as { parent?: { name: string } }).parent) {
    if (s.name.includes(SHARED_TAG)) return true;
  }
  return false;
}

export default class SharedReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const files = new Map<string, number>();
    for (const m of modules)
      for (const t of m.children.allTests('skipped'))
        if (needsShared(t)) files.set(m.moduleId.replace(/^.*\/test\//, 'test/'), (files.get(m.moduleId.replace(/^.*\/test\//, 'test/')) ?? 0) + 1);
    const n = [...files.values()].reduce((a, b) => a + b, 0);
    if (!n) return;
    const where = [...files].map(([f, k]) => `${f} ${k}`).join(', ');
    console.log(`\n${n} test${n > 1 ? 's' : ''} skipped for lack of ../shared (real weights, photos, benchmark images; not part of the project): ${where}`);
  }
}
