/** Statistics and plots: histogram, normalize, regression, plot (simplePlot). */
import type { TableTaskDef } from '../define.js';

export const statsTasks: readonly TableTaskDef[] = [];
