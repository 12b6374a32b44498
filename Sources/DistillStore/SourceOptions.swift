/// The formats, kinds and options a teacher or dataset is read by are part of this module's
/// interface (`TeacherSource.options`, `Registry.loadDataset(format:)`): whoever imports the
/// store has them, as the protocol layer, which decodes them from requests, has them too.
@_exported import DistillSourceOptions
