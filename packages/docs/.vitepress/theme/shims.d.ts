// Single-file components are compiled by Vite; TypeScript only needs to know they are components.
declare module '*.vue' {
  import type { DefineComponent } from 'vue';
  const component: DefineComponent;
  export default component;
}

// Style sheets are bundled by Vite.
declare module '*.css';
