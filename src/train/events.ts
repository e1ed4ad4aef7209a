/**
 * What the trainer tells its caller while it runs: typed events to a listener (`TrainOptions.onEvent`). The
 * trainer renders nothing itself; `heed train` and `heed demo` draw progress lines from these
 * (src/cli/progress.ts `trainProgress`), the browser page or a library user can draw their own.
 */

/** The rule an early-stopping callback applied when it asked to stop (the numbers it compared). */
export interface StopRule {
  /** e.g. "ifs-plateau" */
  name: string;
  /** the rule's settings and the values that met it, e.g. {patience: 3, min_delta: 0.01, min_ifs: 0.9, gain: 0.004, ifs: 0.93} */
  values: Record<string, number>;
}

export type TrainEvent =
  | {
      type: 'start';
      runDir: string;
      /** optimizer steps of the whole plan */
      totalSteps: number;
      /** steps done before this session (a resumed run), 0 for a fresh one */
      startStep: number;
      resumed: boolean;
      /** training wall time and tokens of earlier sessions (resumed runs) */
      priorSeconds: number;
      priorTokens: number;
    }
  | {
      type: 'step';
      step: number;
      totalSteps: number;
      stage: number;
      stageName: string;
      loss: number;
      lr: number;
      gradNorm: number;
      tokens: number;
      tokensPerS: number;
      /** set at evaluation points */
      evalLoss?: number;
      /** the latest IFS measured (at this step or an earlier evaluation), and its step */
      ifs?: { value: number; step: number };
      /** steps and training seconds of this session so far: the ETA of the steps left uses this speed */
      sessionSteps: number;
      sessionSeconds: number;
      /** the last step of a stage */
      stageEnd: boolean;
    }
  | { type: 'eval-start'; step: number; name: string; total: number; unit: string }
  | { type: 'eval-progress'; step: number; name: string; done: number; total: number; unit: string }
  | { type: 'eval-end'; step: number; name: string; seconds: number; metrics: Record<string, number> }
  | { type: 'early-stop'; step: number; callback: string; reason: string; rule?: StopRule }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'end'; step: number; interrupted: boolean; stoppedEarly: boolean };

export type TrainListener = (e: TrainEvent) => void;
