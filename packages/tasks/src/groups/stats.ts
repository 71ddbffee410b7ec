/** Statistics and plots: histogram, normalize, regression, plot (simplePlot). */
import type { TableTaskDef } from '../define.js';
import { histogram } from '../table/histogram.js';
import { normalize } from '../table/normalize.js';
import { plot } from '../table/plot.js';
import { regression } from '../table/regression.js';

export const statsTasks: readonly TableTaskDef[] = [histogram, normalize, regression, plot];
