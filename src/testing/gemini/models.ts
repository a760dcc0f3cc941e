/** @internal Base models: `GET models`, `GET models/{id}`. */
import { fail, type Reply } from "../shared/http.js";
import { pageOfQuery } from "../shared/pagination.js";
import type { FakeBaseModel } from "./base-models.js";
import type { GeminiFake } from "./state.js";

/** The base model `models/{id}`, or Google's 404 for `method`. */
export function findBaseModel(
  fake: GeminiFake,
  id: string,
  version: string,
  method = "getModel",
): FakeBaseModel {
  const model = fake.baseModels.find((candidate) => candidate.name === `models/${id}`);
  if (model === undefined) {
    fail(
      "NOT_FOUND",
      `models/${id} is not found for API version ${version}, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`,
    );
  }
  return model;
}

export function listBaseModels(fake: GeminiFake, query: Record<string, unknown>): Reply {
  const { items, nextPageToken } = pageOfQuery(fake.baseModels, query, "", 50);
  return {
    status: 200,
    body: { models: items, ...(nextPageToken === undefined ? {} : { nextPageToken }) },
  };
}
