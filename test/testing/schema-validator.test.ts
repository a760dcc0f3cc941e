import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DISCOVERY_SCHEMAS } from "../../src/testing/gemini/discovery-schemas.generated.js";
import {
  assertValidAgainstSchema,
  BUNDLED_SCHEMAS,
  DISCOVERY_REVISION,
  SchemaValidationError,
  validateAgainstSchema,
} from "../../src/testing/index.js";
import { extractSchemaSubset, FAKE_ROOT_SCHEMAS } from "../../src/testing/shared/schema-subset.js";

const documentPath = new URL(
  "../fixtures/discovery/generativelanguage-v1beta.discovery.json",
  import.meta.url,
);
const document = JSON.parse(readFileSync(documentPath, "utf8")) as {
  revision: string;
  schemas: Record<string, Record<string, unknown>>;
};

describe("bundled discovery subset", () => {
  it("equals the $ref closure of the root schemas in the committed discovery document", () => {
    expect(DISCOVERY_REVISION).toBe(document.revision);
    expect(DISCOVERY_SCHEMAS).toEqual(extractSchemaSubset(document, FAKE_ROOT_SCHEMAS));
  });

  it("differs from the document only by prose (descriptions)", () => {
    const strip = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(strip);
      if (value !== null && typeof value === "object") {
        return Object.fromEntries(
          Object.entries(value)
            .filter(([key, inner]) => !(key === "description" && typeof inner === "string"))
            .filter(([key]) => key !== "enumDescriptions")
            .map(([key, inner]) => [key, strip(inner)]),
        );
      }
      return value;
    };
    for (const [name, schema] of Object.entries(DISCOVERY_SCHEMAS)) {
      expect(schema, name).toEqual(strip(document.schemas[name]));
    }
    // Property names survive, including ones called "description".
    expect(Object.keys(DISCOVERY_SCHEMAS.TunedModel!.properties!)).toEqual(
      Object.keys(document.schemas.TunedModel!.properties as object),
    );
  });

  it("adds CreateTunedModelMetadata, which the v1beta document lacks", () => {
    expect(document.schemas.CreateTunedModelMetadata).toBeUndefined();
    expect(BUNDLED_SCHEMAS.CreateTunedModelMetadata?.properties).toHaveProperty("snapshots");
  });
});

describe("validateAgainstSchema", () => {
  const goodModel = {
    displayName: "x",
    baseModel: "models/gemini-1.5-flash-001-tuning",
    tuningTask: {
      hyperparameters: { epochCount: 5, batchSize: 4, learningRate: 0.001 },
      trainingData: { examples: { examples: [{ textInput: "1", output: "2" }] } },
    },
  };

  it("accepts a valid create body", () => {
    expect(validateAgainstSchema(goodModel, "TunedModel")).toEqual({ valid: true, issues: [] });
  });

  it("reports unknown fields, wrong types and bad enums with paths", () => {
    const result = validateAgainstSchema(
      {
        displayName: goodModel.displayName,
        baseModel: goodModel.baseModel,
        state: "DONE",
        topK: 1.5,
        tuningTask: {
          ...goodModel.tuningTask,
          trainingData: { examples: { examples: [{ text_input: "1", output: 2 }] } },
        },
      },
      "TunedModel",
    );
    expect(result.valid).toBe(false);
    expect(result.issues).toEqual([
      {
        path: "$.state",
        code: "bad_enum",
        message: expect.stringContaining('"DONE" is not one of'),
      },
      { path: "$.topK", code: "wrong_type", message: "expected an integer, got number" },
      {
        path: "$.tuningTask.trainingData.examples.examples[0].text_input",
        code: "unknown_field",
        message: 'unknown field "text_input"',
      },
      {
        path: "$.tuningTask.trainingData.examples.examples[0].output",
        code: "wrong_type",
        message: "expected a string, got number",
      },
    ]);
  });

  it("checks formats: int64 as string, int32 range, timestamps, durations", () => {
    expect(
      validateAgainstSchema({ readerProjectNumbers: [123] }, "TunedModel").issues[0],
    ).toMatchObject({
      path: "$.readerProjectNumbers[0]",
      code: "wrong_type",
    });
    expect(validateAgainstSchema({ readerProjectNumbers: ["123"] }, "TunedModel").valid).toBe(true);
    expect(
      validateAgainstSchema({ readerProjectNumbers: ["12a"] }, "TunedModel").issues[0]?.code,
    ).toBe("bad_format");
    expect(validateAgainstSchema({ topK: 2 ** 31 }, "TunedModel").issues[0]?.code).toBe(
      "bad_format",
    );
    expect(validateAgainstSchema({ createTime: "yesterday" }, "TunedModel").issues[0]?.code).toBe(
      "bad_format",
    );
    expect(
      validateAgainstSchema({ createTime: "2024-03-14T15:11:23.766989274Z" }, "TunedModel").valid,
    ).toBe(true);
    expect(validateAgainstSchema({ temperature: "NaN" }, "TunedModel").valid).toBe(true);
  });

  it("flags output-only fields on request when asked", () => {
    const result = validateAgainstSchema({ ...goodModel, name: "tunedModels/x" }, "TunedModel", {
      rejectReadOnly: true,
    });
    expect(result.issues).toEqual([
      { path: "$.name", code: "read_only", message: '"name" is output only' },
    ]);
  });

  it("validates Any payloads by their @type (operation metadata and response)", () => {
    const operation = {
      name: "tunedModels/x/operations/y",
      metadata: {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.CreateTunedModelMetadata",
        totalSteps: 3,
        tunedModel: "tunedModels/x",
        snapshots: [
          { step: 1, epoch: 1, meanLoss: 2.5, computeTime: "2026-01-01T00:00:01Z", loss: 1 },
        ],
      },
      done: true,
      response: {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.TunedModel",
        state: "ACTIVE",
      },
    };
    expect(validateAgainstSchema(operation, "Operation").issues).toEqual([
      {
        path: "$.metadata.snapshots[0].loss",
        code: "unknown_field",
        message: 'unknown field "loss"',
      },
    ]);
    expect(validateAgainstSchema(operation, "Operation", { resolveTypeUrls: false }).valid).toBe(
      true,
    );
    // Unknown @type: free-form.
    expect(
      validateAgainstSchema(
        { metadata: { "@type": "type.googleapis.com/x.Unknown", any: 1 } },
        "Operation",
      ).valid,
    ).toBe(true);
  });

  it("reports unknown schemas and throws with every issue listed", () => {
    expect(validateAgainstSchema({}, "NoSuchSchema").issues[0]?.code).toBe("unknown_schema");
    expect(() => assertValidAgainstSchema({ a: 1, b: 2 }, "Empty")).toThrowError(
      SchemaValidationError,
    );
    try {
      assertValidAgainstSchema({ a: 1, b: 2 }, "Empty");
    } catch (error) {
      expect((error as SchemaValidationError).issues).toHaveLength(2);
      expect((error as Error).message).toContain("$.a: unknown field");
    }
  });
});
