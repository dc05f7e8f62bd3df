// A small, safe Python unpickler (protocols 0-5, minus out-of-band buffers and the extension registry).
// Opcodes and their semantics: CPython Lib/pickle.py (`_Unpickler.load_*`) and Lib/pickletools.py.
// Nothing from the stream is ever executed: GLOBAL/STACK_GLOBAL go through `findClass`, which decides what each
// name means; names it does not know become inert `PyObject` records.
//
// Python values map to JS as: None -> null, bool -> boolean, int -> number (bigint beyond 2^53), float -> number,
// str -> string, bytes/bytearray -> Uint8Array, tuple/list -> array, dict -> PyDict (a Map), set -> Set.

export class UnpicklingError extends Error {
  override name = 'UnpicklingError';
}

/** A dict; `cls` is 'dict' or the class that built it (e.g. 'collections.OrderedDict'); `attrs` holds BUILD state. */
export class PyDict extends Map<unknown, unknown> {
  readonly attrs = new Map<string, unknown>();
  constructor(readonly cls = 'dict') {
    super();
  }
}

/** A callable found by GLOBAL: REDUCE/NEWOBJ call `call(args)`. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly call: (args: unknown[]) => unknown,
  ) {}
}

/** An instance of a class the caller does not interpret: its constructor arguments and BUILD state, kept inert. */
export class PyObject {
  state: unknown = undefined;
  readonly dictItems = new Map<unknown, unknown>();
  readonly listItems: unknown[] = [];
  constructor(
    readonly cls: string,
    readonly args: unknown[] = [],
  ) {}
}

export interface UnpickleOptions {
  /** Resolves GLOBAL module/name. Return undefined to fall back to the default (inert PyObject factory). */
  findClass?: (module: string, name: string) => unknown;
  /** Resolves persistent ids (BINPERSID / PERSID). Without it, a persistent id is an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /**
   * Work allowed beyond reading the opcodes: every call (REDUCE, NEWOBJ, BUILD, persistent ids) costs the number of
   * items it is handed, so that a small pickle cannot call a copying constructor on one big object again and again.
   * Default: 1 000 000 + 16 per byte of the pickle.
   */
  maxWork?: number;
}

/** Integers wider than this (LONG1/LONG4 payload bytes, or decimal digits of INT/LONG) are refused: torch files
 *  hold sizes, strides and offsets, never big numbers, and decoding a huge one is slow. */
export const MAX_INT_BYTES = 256;
const MAX_INT_DIGITS = 640; // 256 bytes = 2048 bits = 617 decimal digits

const OPNAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

export function opcodeName(op: number): string {
  const hex = `0x${op.toString(16).padStart(2, '0')}`;
  return OPNAMES[op] ? `${OPNAMES[op]} (${hex})` : hex;
}


const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Two's-complement little-endian integer (LONG1/LONG4 payload), in time linear in its length (one hex parse). */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  const hex = new Array<string>(b.length);
  for (let i = 0; i < b.length; i++) hex[b.length - 1 - i] = HEX[b[i]];
  let v = BigInt(`0x${hex.join('')}`);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return toInt(v);
}

function toInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Bytes as latin-1 text, in chunks (one string per byte, or one argument per byte, would not scale). */
function latin1(b: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < b.length; i += 8192) parts.push(String.fromCharCode.apply(null, b.subarray(i, i + 8192) as unknown as number[]));
  return parts.join('');
}

/** Python's raw-unicode-escape (protocol 0 UNICODE): latin-1 with \uXXXX and \UXXXXXXXX escapes; undefined when an
 *  escape is no code point. */
function rawUnicodeEscape(s: string): string | undefined {
  let bad = false;
  const out = s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, u, U) => {
    const c = parseInt(u ?? U, 16);
    if (c > 0x10ffff) bad = true;
    return bad ? '' : String.fromCodePoint(c);
  });
  return bad ? undefined : out;
}

/** How many items a value hands to a call (for the work bound): its length or size, 0 for scalars. */
function itemsOf(v: unknown): number {
  if (Array.isArray(v) || v instanceof Uint8Array || typeof v === 'string') return v.length;
  if (v instanceof Map || v instanceof Set) return v.size;
  return 0;
}

/** Default meaning of a few builtins; everything else becomes an inert PyObject factory. */
function defaultClass(module: string, name: string): unknown {
  const q = `${module}.${name}`;
  switch (q) {
    case 'collections.OrderedDict':
    case 'builtins.dict':
    case '__builtin__.dict':
      return new PyCallable(q, (args) => {
        const d = new PyDict(q === 'collections.OrderedDict' ? q : 'dict');
        const init = args[0];
        if (init instanceof Map) for (const [k, v] of init) d.set(k, v);
        else if (Array.isArray(init)) for (const kv of init) if (Array.isArray(kv) && kv.length === 2) d.set(kv[0], kv[1]);
        return d;
      });
    case 'builtins.list':
    case 'builtins.tuple':
    case '__builtin__.list':
    case '__builtin__.tuple':
      return new PyCallable(q, (args) => (Array.isArray(args[0]) ? [...args[0]] : []));
    case 'builtins.set':
    case 'builtins.frozenset':
      return new PyCallable(q, (args) => new Set(Array.isArray(args[0]) ? args[0] : []));
    case '_codecs.encode': // how protocol 2 pickles Python 3 bytes: _codecs.encode(latin1_text, 'latin1')
      return new PyCallable(q, (args) => Uint8Array.from(String(args[0]), (c) => c.charCodeAt(0) & 0xff));
    case 'builtins.bytearray':
    case 'builtins.bytes':
      return new PyCallable(q, (args) => (args[0] instanceof Uint8Array ? args[0] : new Uint8Array(0)));
  }
  return new PyCallable(q, (args) => new PyObject(q, args));
}

/** Unpickles one object from `bytes` (trailing bytes after STOP are ignored, as Python does). */
export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8');
  let pos = 0;
  let opAt = 0;
  let op = 0;
  const fail = (msg: string, where = `(opcode ${opcodeName(op)} at byte ${opAt})`): never => {
    throw new UnpicklingError(`${msg} ${where}`);
  };
  const need = (n: number) => {
    if (n < 0 || pos + n > bytes.length) fail(`pickle truncated: needs ${n} more bytes at byte ${pos}, ${bytes.length - pos} left`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`length ${v} beyond the end of the pickle`);
    return Number(v);
  };
  const take = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const maxWork = opts.maxWork ?? 1_000_000 + 16 * bytes.length;
  let work = 0;
  const charge = (n: number) => {
    work += n;
    if (work > maxWork) fail(`the pickle asks for more than ${maxWork} items of work for its ${bytes.length} bytes: not a plausible checkpoint`);
  };
  /** A decimal INT/LONG argument (protocol 0), checked before BigInt sees it. */
  const decimal = (s: string, what: string) => {
    if (s.length > MAX_INT_DIGITS) fail(`${what} argument of ${s.length} digits: integers are limited to ${MAX_INT_DIGITS} digits`);
    if (!/^[+-]?\d+$/.test(s)) fail(`${what} argument ${JSON.stringify(s.slice(0, 40))} is not an integer`);
    return toInt(BigInt(s));
  };
  const long = (n: number, what: string) => {
    if (n > MAX_INT_BYTES) fail(`${what} integer of ${n} bytes: integers are limited to ${MAX_INT_BYTES} bytes (torch files hold no big integers)`);
    return decodeLong(take(n));
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail('pickle truncated: missing end of line');
    const s = latin1(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };

  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const pop = () => {
    if (stack.length === 0) fail('stack underflow: corrupt pickle');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('stack underflow: corrupt pickle');
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) return fail('MARK expected on the stack: corrupt pickle');
    stack = prev;
    return items;
  };
  const getMemo = (i: number) => {
    if (!memo.has(i)) fail(`memo entry ${i} was never stored: corrupt pickle`);
    stack.push(memo.get(i));
  };
  const find = (module: string, name: string) => opts.findClass?.(module, name) ?? defaultClass(module, name);
  const call = (fn: unknown, args: unknown) => {
    if (!(fn instanceof PyCallable)) return fail(`object is not callable (${describe(fn)})`);
    if (!Array.isArray(args)) return fail(`${fn.qualname}: arguments must be a tuple, found ${describe(args)}`);
    charge(1 + args.length + args.reduce((n: number, a) => n + itemsOf(a), 0));
    return fn.call(args);
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (items.length % 2) fail('odd number of items for SETITEMS');
    for (let i = 0; i < items.length; i += 2) {
      if (target instanceof Map) target.set(items[i], items[i + 1]);
      else if (target instanceof PyObject) target.dictItems.set(items[i], items[i + 1]);
      else fail(`cannot set items on ${describe(target)}`);
    }
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    const push = (to: unknown[]) => {
      for (const x of items) to.push(x); // not push(...items): one argument per item overflows the stack
    };
    if (Array.isArray(target)) push(target);
    else if (target instanceof PyObject) push(target.listItems);
    else if (target instanceof Set) for (const x of items) target.add(x);
    else fail(`cannot append to ${describe(target)}`);
  };
  const persistent = (pid: unknown) => {
    if (!opts.persistentLoad) return fail('persistent id found but no persistent_load given');
    charge(1 + itemsOf(pid));
    return opts.persistentLoad(pid);
  };

  for (;;) {
    if (pos >= bytes.length) fail(`pickle truncated: no STOP opcode before the end (${bytes.length} bytes)`);
    opAt = pos;
    op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: take(8); break; // FRAME: framing is only a read-ahead hint
      case 0x2e: { // STOP
        return pop();
      }
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x49: { // INT (protocol 0; "01"/"00" are True/False)
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : decimal(s, 'INT'));
        break;
      }
      case 0x4c: stack.push(decimal(line().replace(/L$/, ''), 'LONG')); break; // LONG
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(u8(), 'LONG1')); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail('negative LONG4 length');
        stack.push(long(n, 'LONG4'));
        break;
      }
      case 0x46: stack.push(parseFloat(line())); break; // FLOAT
      case 0x47: need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x53: { // STRING: a quoted Python 2 str literal
        const s = line();
        if (s.length < 2 || s[0] !== s[s.length - 1] || (s[0] !== "'" && s[0] !== '"')) fail('STRING argument is not quoted');
        stack.push(s.slice(1, -1).replace(/\\x([0-9a-fA-F]{2})|\\(.)/g, (_, h, c) => (h ? String.fromCharCode(parseInt(h, 16)) : ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[c] ?? c)));
        break;
      }
      case 0x54: { // BINSTRING (Python 2 str, read as latin-1)
        const n = i32();
        if (n < 0) fail('negative BINSTRING length');
        stack.push(latin1(take(n)));
        break;
      }
      case 0x55: stack.push(latin1(take(u8()))); break; // SHORT_BINSTRING
      case 0x56: stack.push(rawUnicodeEscape(line()) ?? fail('UNICODE argument with an escape beyond U+10FFFF')); break; // UNICODE
      case 0x58: stack.push(utf8.decode(take(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(utf8.decode(take(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(utf8.decode(take(u64()))); break; // BINUNICODE8
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(take(u64()).slice()); break; // BYTEARRAY8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: { // TUPLE
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark();
        const d = new PyDict();
        setItems(d, items);
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x67: getMemo(Number(line())); break; // GET
      case 0x68: getMemo(u8()); break; // BINGET
      case 0x6a: getMemo(u32()); break; // LONG_BINGET
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        stack.push(find(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(find(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x92: { // NEWOBJ_EX (keyword arguments are dropped)
        pop();
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x69: { // INST
        const module = line();
        const name = line();
        const args = popMark();
        stack.push(call(find(module, name), args));
        break;
      }
      case 0x6f: { // OBJ
        const items = popMark();
        const cls = items.shift();
        stack.push(call(cls, items));
        break;
      }
      case 0x62: { // BUILD: obj.__setstate__(state) or obj.__dict__.update(state)
        const state = pop();
        const obj = top();
        charge(1 + itemsOf(state) + (Array.isArray(state) ? state.reduce((n: number, d) => n + itemsOf(d), 0) : 0));
        if (obj instanceof PyDict) {
          // (dict_state, slot_state) from objects with __slots__; otherwise a dict of attributes
          const dicts = Array.isArray(state) && state.length === 2 ? state : [state];
          for (const d of dicts) if (d instanceof Map) for (const [k, v] of d) obj.attrs.set(String(k), v);
        } else if (obj instanceof PyObject) obj.state = state;
        else if (obj !== null && typeof obj === 'object' && typeof (obj as { setState?: unknown }).setState === 'function') {
          (obj as { setState(s: unknown): void }).setState(state);
        } else fail(`cannot BUILD ${describe(obj)}`);
        break;
      }
      case 0x51: stack.push(persistent(pop())); break; // BINPERSID
      case 0x50: stack.push(persistent(line())); break; // PERSID
      default:
        // EXT1/2/4 (copyreg extension registry), NEXT_BUFFER/READONLY_BUFFER (out-of-band data) and unknown bytes
        if (OPNAMES[op]) fail(`unsupported pickle opcode ${opcodeName(op)}`, `at byte ${opAt}`);
        fail(`unknown pickle opcode ${opcodeName(op)}`, `at byte ${opAt}: corrupt pickle`);
    }
  }
}

/** Short description of a value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyCallable) return v.qualname;
  if (v instanceof PyObject) return `${v.cls} object`;
  if (v instanceof PyDict) return v.cls;
  if (Array.isArray(v)) return `tuple/list of ${v.length}`;
  if (v instanceof Uint8Array) return `bytes of ${v.length}`;
  if (typeof v === 'object') return v.constructor?.name ?? 'object';
  return `${typeof v} ${String(v).slice(0, 40)}`;
}
