/**
 * The site theme: VitePress's default theme plus the live memory map component.
 */
import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import MemoryMap from './MemoryMap.vue';
import './custom.css';

const theme: Theme = {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('MemoryMap', MemoryMap);
  },
};

export default theme;
