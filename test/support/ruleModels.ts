/** Reading an alert rule's stage models (the JSON text Grafana receives) in tests. */
import type { AlertRule } from "../../observability/alerts/ruleParts";

/** The fields of a query or expression model the tests look at. */
export interface StageModel {
    refId: string;
    expr?: string;
    queryType?: string;
    type?: string;
    expression?: string;
    reducer?: string;
    conditions?: Array<{ evaluator: { type: string; params: number[] } }>;
}

/** The parsed model of `rule`'s stage `refId`; throws when the rule has no such stage. */
export function stageModel(rule: AlertRule, refId: string): StageModel {
    const data = rule.datas.find((item) => item.refId === refId);
    if (!data) throw new Error(`${rule.name} has no stage ${refId}`);
    return JSON.parse(data.model) as StageModel;
}
