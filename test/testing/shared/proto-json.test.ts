/**
 * The proto3 JSON mapping as the fakes read and write it, against the Gemini API's discovery
 * schemas and proto enum numbers.
 */
import { describe, expect, it } from "vitest";
import {
  BUNDLED_SCHEMAS,
  GEMINI_ENUM_NUMBERS,
  ProtoJsonCodec,
  VERTEX_ENUM_NUMBERS,
  VERTEX_SCHEMAS,
} from "../../../src/testing/index.js";

const codec = new ProtoJsonCodec({
  schemas: BUNDLED_SCHEMAS,
  enums: GEMINI_ENUM_NUMBERS,
  messageType: (name) => `google.ai.generativelanguage.v1beta.${name}`,
});
const vertex = new ProtoJsonCodec({
  schemas: VERTEX_SCHEMAS,
  enums: VERTEX_ENUM_NUMBERS,
  messageType: (name) =>
    `google.cloud.aiplatform.v1.${name.replace(/^GoogleCloudAiplatformV1/, "")}`,
});

const read = (value: unknown, schema: string, root = "") => codec.decode(value, schema, root);

describe("reading enums", () => {
  it("accepts a name or the proto number, and normalises to the name", () => {
    const { value, issues } = read(
      {
        safetySettings: [
          { category: "HARM_CATEGORY_HARASSMENT", threshold: 4 },
          { category: 10, threshold: "BLOCK_ONLY_HIGH" },
        ],
        contents: [{ parts: [{ text: "hi" }] }],
      },
      "GenerateContentRequest",
    );
    expect(issues).toEqual([]);
    expect(value.safetySettings).toEqual([
      { category: "HARM_CATEGORY_HARASSMENT", threshold: "BLOCK_NONE" },
      { category: "HARM_CATEGORY_DANGEROUS_CONTENT", threshold: "BLOCK_ONLY_HIGH" },
    ]);
  });

  it("rejects an unknown name or number in Google's words", () => {
    const { issues } = read(
      { safetySettings: [{ category: "NOPE", threshold: 99 }] },
      "GenerateContentRequest",
    );
    expect(issues.map((issue) => issue.description)).toEqual([
      `Invalid value at 'safety_settings[0].category' (type.googleapis.com/google.ai.generativelanguage.v1beta.HarmCategory), "NOPE"`,
      `Invalid value at 'safety_settings[0].threshold' (type.googleapis.com/google.ai.generativelanguage.v1beta.SafetySetting.HarmBlockThreshold), 99`,
    ]);
    expect(issues[0]?.field).toBe("safety_settings[0].category");
  });

  it("uses proto numbers, not the discovery document's order", () => {
    // Candidate.FinishReason declares LANGUAGE = 6 before OTHER = 5.
    expect(codec.enumNumber("Candidate", "finishReason", "LANGUAGE")).toBe(6);
    expect(codec.enumNumber("Candidate", "finishReason", "OTHER")).toBe(5);
    expect(codec.enumNumber("TunedModel", "state", "ACTIVE")).toBe(2);
    expect(
      vertex.enumNumber("GoogleCloudAiplatformV1TuningJob", "state", "JOB_STATE_SUCCEEDED"),
    ).toBe(4);
  });
});

describe("reading numbers", () => {
  it("takes int64 as a string or a number and keeps it as a decimal string", () => {
    for (const epochCount of [2, "2", " 2"]) {
      const { value, issues } = vertex.decode(
        { supervisedTuningSpec: { hyperParameters: { epochCount } } },
        "GoogleCloudAiplatformV1TuningJob",
        "tuning_job",
      );
      expect(issues, String(epochCount)).toEqual([]);
      expect(value).toEqual({ supervisedTuningSpec: { hyperParameters: { epochCount: "2" } } });
    }
    const big = vertex.decode(
      {
        tuningDataStats: {
          supervisedTuningDataStats: { totalBillableTokenCount: "9007199254740993" },
        },
      },
      "GoogleCloudAiplatformV1TuningJob",
    );
    expect(big.value).toEqual({
      tuningDataStats: {
        supervisedTuningDataStats: { totalBillableTokenCount: "9007199254740993" },
      },
    });
  });

  it("takes int32 as a number or a string and keeps it as a number", () => {
    const { value, issues } = read(
      { tuningTask: { hyperparameters: { epochCount: "5", batchSize: 4 } } },
      "TunedModel",
      "tuned_model",
    );
    expect(issues).toEqual([]);
    expect(value).toEqual({ tuningTask: { hyperparameters: { epochCount: 5, batchSize: 4 } } });
  });

  it("rejects fractions, text and out-of-range values, naming the proto type", () => {
    const { issues } = read(
      { tuningTask: { hyperparameters: { epochCount: 2.5, batchSize: "four" } }, topK: 2 ** 31 },
      "TunedModel",
      "tuned_model",
    );
    expect(issues.map((issue) => issue.description)).toEqual([
      "Invalid value at 'tuned_model.tuning_task.hyperparameters.epoch_count' (TYPE_INT32), 2.5",
      `Invalid value at 'tuned_model.tuning_task.hyperparameters.batch_size' (TYPE_INT32), "four"`,
      "Invalid value at 'tuned_model.top_k' (TYPE_INT32), 2147483648",
    ]);
  });

  it("takes floats as numbers, numeric strings and the special values", () => {
    const { value, issues } = read(
      { temperature: "0.5", topP: 1, tuningTask: { hyperparameters: { learningRate: "NaN" } } },
      "TunedModel",
    );
    expect(issues).toEqual([]);
    expect(value.temperature).toBe(0.5);
    expect(
      Number.isNaN(
        (value.tuningTask as { hyperparameters: { learningRate: number } }).hyperparameters
          .learningRate,
      ),
    ).toBe(true);
    expect(read({ temperature: "hot" }, "TunedModel", "tuned_model").issues[0]?.description).toBe(
      `Invalid value at 'tuned_model.temperature' (TYPE_FLOAT), "hot"`,
    );
  });
});

describe("reading well-known types and names", () => {
  it("checks Timestamp and Duration forms", () => {
    expect(read({ createTime: "2026-01-01T00:00:00.123456789Z" }, "TunedModel").issues).toEqual([]);
    expect(read({ createTime: "2026-01-01T00:00:00+02:00" }, "TunedModel").issues).toEqual([]);
    const bad = read({ createTime: "yesterday" }, "TunedModel", "tuned_model").issues[0];
    expect(bad?.description).toMatch(
      /^Invalid value at 'tuned_model.create_time' \(type.googleapis.com\/google.protobuf.Timestamp\)/,
    );
    expect(read({ startOffset: "3.5s", endOffset: "-1s" }, "VideoMetadata").issues).toEqual([]);
    expect(read({ startOffset: "3.5" }, "VideoMetadata").issues[0]?.description).toMatch(
      /Duration.*must end with 's'/,
    );
  });

  it("reads FieldMask paths in either spelling as lowerCamel paths", () => {
    const { values, issues } = codec.decodeQuery(
      new URLSearchParams("updateMask=display_name,tuning_task.hyperparameters.epoch_count,topK"),
      { updateMask: { type: "string", format: "google-fieldmask" } },
    );
    expect(issues).toEqual([]);
    expect(values.updateMask).toBe("displayName,tuningTask.hyperparameters.epochCount,topK");
  });

  it("accepts proto field names, treats null as unset and rejects a field given twice", () => {
    const { value, issues } = read(
      {
        display_name: "x",
        description: null,
        tuning_task: { hyperparameters: { epoch_count: 1 } },
      },
      "TunedModel",
    );
    expect(issues).toEqual([]);
    expect(value).toEqual({ displayName: "x", tuningTask: { hyperparameters: { epochCount: 1 } } });
    const twice = read({ displayName: "a", display_name: "b" }, "TunedModel", "tuned_model");
    expect(twice.issues[0]?.code).toBe("duplicate_field");
  });

  it("rejects unknown fields like Google's front end, at the root and nested", () => {
    const nested = read({ tuningTask: { epochs: 3 } }, "TunedModel", "tuned_model").issues;
    expect(nested.map((issue) => issue.description)).toEqual([
      `Invalid JSON payload received. Unknown name "epochs" at 'tuned_model.tuning_task': Cannot find field.`,
    ]);
    const root = read({ prompt: "hi" }, "GenerateContentRequest").issues;
    expect(root[0]?.description).toBe(
      `Invalid JSON payload received. Unknown name "prompt": Cannot find field.`,
    );
  });

  it("keeps map keys as data (labels are not field names)", () => {
    const { value, issues } = vertex.decode(
      { labels: { team_name: "nlp", tunekit_request: "abc" } },
      "GoogleCloudAiplatformV1TuningJob",
    );
    expect(issues).toEqual([]);
    expect(value.labels).toEqual({ team_name: "nlp", tunekit_request: "abc" });
  });
});

describe("query parameters", () => {
  it("reads declared parameters, passes Google's system parameters and rejects others", () => {
    const ok = codec.decodeQuery(
      new URLSearchParams("pageSize=5&key=k&alt=sse&$alt=json;enum-encoding=int"),
      {
        pageSize: { type: "integer", format: "int32" },
      },
    );
    expect(ok).toEqual({ values: { pageSize: 5 }, issues: [] });
    const bad = codec.decodeQuery(new URLSearchParams("pageSize=five&colour=red"), {
      pageSize: { type: "integer", format: "int32" },
    });
    expect(bad.issues.map((issue) => issue.description)).toEqual([
      `Invalid value at 'page_size' (TYPE_INT32), "five"`,
      `Invalid JSON payload received. Unknown name "colour": Cannot bind query parameter. Field 'colour' could not be found in request message.`,
    ]);
  });
});

describe("writing replies", () => {
  it("writes enum numbers when asked, names otherwise; special floats as strings", () => {
    const reply = {
      candidates: [
        {
          finishReason: "OTHER",
          safetyRatings: [{ category: "HARM_CATEGORY_HATE_SPEECH", probability: "LOW" }],
        },
      ],
      usageMetadata: { promptTokenCount: 3 },
    };
    expect(codec.encode(reply, "GenerateContentResponse", "int")).toEqual({
      candidates: [{ finishReason: 5, safetyRatings: [{ category: 8, probability: 2 }] }],
      usageMetadata: { promptTokenCount: 3 },
    });
    expect(codec.encode(reply, "GenerateContentResponse")).toEqual(reply);
    expect(
      codec.encode({ tuningTask: { snapshots: [{ meanLoss: Number.NaN }] } }, "TunedModel"),
    ).toEqual({
      tuningTask: { snapshots: [{ meanLoss: "NaN" }] },
    });
  });
});

describe("the generated enum-number tables", () => {
  it("cover every enum the fakes read or write in their core resources", () => {
    const gemini: Array<[string, string]> = [
      ["TunedModel", "state"],
      ["Permission", "granteeType"],
      ["Permission", "role"],
      ["SafetySetting", "category"],
      ["SafetySetting", "threshold"],
      ["Candidate", "finishReason"],
      ["SafetyRating", "probability"],
    ];
    for (const [schema, property] of gemini) {
      const documented = BUNDLED_SCHEMAS[schema]?.properties?.[property]?.enum ?? [];
      const numbered = Object.keys(GEMINI_ENUM_NUMBERS[schema]?.[property]?.values ?? {});
      expect(numbered.length, `${schema}.${property}`).toBeGreaterThan(1);
      // Values newer than the proto snapshot keep their names on the wire.
      expect(documented, `${schema}.${property}`).toEqual(expect.arrayContaining(numbered));
    }
    const vertexCore: Array<[string, string]> = [
      ["GoogleCloudAiplatformV1TuningJob", "state"],
      ["GoogleCloudAiplatformV1SupervisedHyperParameters", "adapterSize"],
    ];
    for (const [schema, property] of vertexCore) {
      const documented = VERTEX_SCHEMAS[schema]?.properties?.[property]?.enum ?? [];
      expect(Object.keys(VERTEX_ENUM_NUMBERS[schema]?.[property]?.values ?? {}).sort()).toEqual(
        [...documented].sort(),
      );
    }
  });
});
