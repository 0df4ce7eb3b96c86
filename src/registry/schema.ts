import { z } from 'zod';
import { MAX_ACTIVITY, MAX_COMMUNITY } from '../../decoders/scitags/flowlabel.js';

/**
 * Our own schema for the SciTags registry (https://www.scitags.org/api.json): the published
 * JSON schema is not valid JSON and misspells `expId`, so we validate against this one.
 * Ids must fit the flow label (9-bit community, 6-bit activity); unknown extra keys are
 * allowed so a registry that grows new attributes still loads.
 */
const activitySchema = z.object({
  activityName: z.string().min(1).max(200),
  activityId: z.number().int().min(0).max(MAX_ACTIVITY),
});

const experimentSchema = z.object({
  expName: z.string().min(1).max(200),
  expId: z.number().int().min(0).max(MAX_COMMUNITY),
  activities: z.array(activitySchema).max(MAX_ACTIVITY + 1),
});

export const registryDocumentSchema = z
  .object({
    experiments: z
      .array(experimentSchema)
      .min(1)
      .max(MAX_COMMUNITY + 1),
    version: z.number().int().optional(),
    modified: z.string().optional(),
  })
  .superRefine((doc, ctx) => {
    const seen = new Set<number>();
    for (const [i, exp] of doc.experiments.entries()) {
      if (seen.has(exp.expId)) {
        ctx.addIssue({ code: 'custom', path: ['experiments', i, 'expId'], message: `duplicate expId ${exp.expId}` });
      }
      seen.add(exp.expId);
      const acts = new Set<number>();
      for (const [j, act] of exp.activities.entries()) {
        if (acts.has(act.activityId)) {
          ctx.addIssue({
            code: 'custom',
            path: ['experiments', i, 'activities', j, 'activityId'],
            message: `duplicate activityId ${act.activityId} in ${exp.expName}`,
          });
        }
        acts.add(act.activityId);
      }
    }
  });

export type RegistryDocument = z.infer<typeof registryDocumentSchema>;

/** Validates a parsed registry document; throws an Error naming the first problem's path. */
export function validateRegistryDocument(doc: unknown): RegistryDocument {
  const result = registryDocumentSchema.safeParse(doc);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue ? issue.path.join('.') || '(root)' : '(root)';
    throw new Error(`invalid SciTags registry at ${where}: ${issue?.message ?? 'unknown problem'}`);
  }
  return result.data;
}
