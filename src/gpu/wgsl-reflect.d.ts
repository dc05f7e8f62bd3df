// wgsl_reflect's package.json points "main" at a CommonJS file while declaring "type": "module", so Node
// cannot load it; its ES module build is imported by path, and typed from the package's own declarations.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
