/** The text of a `generateContent` reply, shared by the Gemini API and Vertex AI backends. */

/** The part of a `GenerateContentResponse` the text is read from (both APIs share it). */
export interface ResponseWithCandidates {
  candidates?:
    | ReadonlyArray<{
        content?:
          | {
              parts?:
                | ReadonlyArray<{ text?: string | undefined; thought?: boolean | undefined }>
                | undefined;
            }
          | undefined;
      }>
    | undefined;
}

/** The text of the first candidate (thought parts skipped), or undefined when there is none. */
export function responseText(response: ResponseWithCandidates): string | undefined {
  const parts = response.candidates?.[0]?.content?.parts;
  if (!parts) return undefined;
  const texts = parts
    .filter((p) => typeof p.text === "string" && !p.thought)
    .map((p) => p.text as string);
  return texts.length > 0 ? texts.join("") : undefined;
}
