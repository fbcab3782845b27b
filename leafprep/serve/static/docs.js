// The API's page: /openapi.json drawn as plain HTML (no Swagger UI, nothing from outside this server).
"use strict";

(async () => {
  const root = document.getElementById("operations");
  const element = (tag, text = "", attributes = {}) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  };
  let api;
  try {
    api = await (await fetch("/openapi.json")).json();
  } catch (error) {
    root.append(element("p", `The API description cannot be read: ${error.message}`));
    return;
  }
  document.getElementById("intro").textContent = `${api.info.title} ${api.info.version}: ${api.info.description || ""}`;

  const describe = (schema) => {
    if (!schema) return "";
    if (schema.anyOf) return schema.anyOf.map(describe).filter((text) => text !== "null").join(" or ");
    if (schema.enum) return schema.enum.join(" | ");
    const range = [schema.minimum != null ? `>= ${schema.minimum}` : "", schema.maximum != null ? `<= ${schema.maximum}` : ""].filter(Boolean);
    return [schema.type || "", schema.format ? `(${schema.format})` : "", ...range].filter(Boolean).join(" ");
  };

  for (const [path, operations] of Object.entries(api.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const card = element("section", "", { class: "operation" });
      const title = element("h2");
      title.append(element("span", method.toUpperCase(), { class: `method ${method}` }), document.createTextNode(path));
      card.append(title, element("p", operation.summary || ""));
      if (operation.description) card.append(element("p", operation.description, { class: "hint" }));

      const parameters = operation.parameters || [];
      if (parameters.length) {
        const table = element("table");
        table.append(element("tr"));
        table.rows[0].append(element("th", "parameter"), element("th", "type"), element("th", "default"), element("th", "what"));
        for (const parameter of parameters) {
          const row = element("tr");
          const schema = parameter.schema || {};
          row.append(
            element("td", `${parameter.name}${parameter.required ? " (required)" : ""}`),
            element("td", describe(schema)),
            element("td", schema.default != null ? String(schema.default) : ""),
            element("td", parameter.description || schema.description || ""),
          );
          table.append(row);
        }
        card.append(table);
      }
      const body = operation.requestBody;
      if (body) {
        card.append(element("h3", "body"), element("p", `${body.description || ""} (${Object.keys(body.content).join(", ")})`));
      }
      card.append(element("h3", "answers"));
      const list = element("ul");
      for (const [status, response] of Object.entries(operation.responses || {})) {
        const types = Object.keys(response.content || {}).join(", ");
        list.append(element("li", `${status}: ${response.description}${types ? ` (${types})` : ""}`));
      }
      card.append(list);
      root.append(card);
    }
  }
})();
