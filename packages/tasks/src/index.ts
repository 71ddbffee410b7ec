/**
 * @rtl/tasks: the task definition API, the task registry and the bundled task library.
 */
export { p, paramError } from './schema.js';
export type {
  ArrayOptions,
  Infer,
  NumberOptions,
  ObjectOf,
  ParamDoc,
  ParamWhere,
  Schema,
  StringOptions,
} from './schema.js';

export { checkTaskName, defineTableTask } from './define.js';
export type {
  FunctionTaskDef,
  TableTaskDef,
  TableTaskSpec,
  TaskContext,
  TaskDef,
  TaskKind,
} from './define.js';

export { TaskRegistry } from './registry.js';
export type {
  RegisterOptions,
  StageCall,
  StageContext,
  StageRun,
  TaskInfo,
  TaskTiming,
} from './registry.js';

export { spellingsOf, toCamelCase, toSnakeCase } from './names.js';

export { ColumnSet } from './columns/column-set.js';
export { andValidity, countSet, hasNulls } from './columns/bitmap.js';
export type { Validity } from './columns/bitmap.js';
export { float64Data, isNumericType, toFloat64, typeName } from './columns/numeric.js';
export { gather } from './columns/gather.js';

export { bundledTasks, createBundledRegistry } from './bundled.js';
export { add, divide, multiply, power, subtract } from './table/arithmetic.js';
export type { BinaryParams } from './table/arithmetic.js';
export { log, squareRoot } from './table/unary.js';
export type { UnaryParams } from './table/unary.js';
export { average } from './table/average.js';
export { filter } from './table/filter.js';
export type { CompareMethod } from './table/filter.js';
export { nullTask } from './table/null.js';
export { MAX_HISTOGRAM_BINS, histogram } from './table/histogram.js';
export type { HistogramMode, HistogramParams } from './table/histogram.js';
export { normalize } from './table/normalize.js';
export type { NormalizeModel, NormalizeParams } from './table/normalize.js';
export {
  MAX_REGRESSION_DEGREE,
  REGRESSION_METADATA_PREFIX,
  regression,
} from './table/regression.js';
export type { RegressionFit, RegressionModel, RegressionParams } from './table/regression.js';
export { PLOT_METADATA_KEY, plot, plotsOf, withMetadata } from './table/plot.js';
export type { PlotDescription, PlotKind, PlotParams } from './table/plot.js';
export { defineFunctionTask, isTaskDefinition, taskExports } from './define.js';
export type { FunctionTaskSpec, TaskExport } from './define.js';
export type { CallContext, ModuleInfo } from './registry.js';
export { bundledFunctionTasks, functionTasks, registerBundledFunctions } from './functions.js';
export { aggregate, crossAverage, crossMax } from './table/cross.js';
export type { CrossParams } from './table/cross.js';
export { classifyStatic } from './table/classify.js';
export type { ClassifyParams } from './table/classify.js';
export { columnSpace } from './table/column-space.js';
export type { ColumnSpaceParams, Space } from './table/column-space.js';
export { unique } from './table/unique.js';
export type { UniqueParams } from './table/unique.js';
export { sort } from './table/sort.js';
export type { SortParams } from './table/sort.js';
export { open, fileParams } from './table/open.js';
export type { FileParams } from './table/open.js';
export { write } from './table/write.js';
export { FILE_FORMATS, readTableFile, writeTableFile } from './io/file.js';
export type { FileFormat, FileOptions } from './io/file.js';
export { tableFromNpy, tableToNpy } from './io/npy.js';
export { tableFromDat, tableToDat } from './io/dat.js';
export { tableFromCsv } from './io/csv-read.js';
export type { CsvReadOptions } from './io/csv-read.js';
export { tableToCsv } from './io/csv-write.js';
export { tableFromArrowFile } from './io/ipc.js';
export { renderTasksDoc, TASK_DOCS, type TaskDocEntry } from './task-docs.js';
export {
  MODULE_IMPORTS,
  allowModuleImports,
  importTaskExports,
  locateError,
  moduleLoadError,
  type SourceLocation,
} from './module-loader.js';
