export {
  AdmissionController,
  STANDARD_CLASS,
  type Admission,
  type AdmissionClassStats,
  type AdmissionOptions,
  type AdmissionRequest,
  type AdmissionStats,
  type AdmissionTimers,
  type PriorityClass,
} from './admission.js';
