//! Tool executions: `POST /v1/tools/{tool}` starts one, `GET /v1/tools/executions[/{id}]`
//! polls or lists, `POST .../{id}/cancel` cancels. An execution is pending on its first poll
//! and succeeds on the second, when its output file is created (named after the prompt).

use serde_json::{json, Value};

use super::clock;
use super::config::{FileSpec, SourceStatuses};
use super::files::View;
use super::http::{json_object, parse_limit, query_get, query_map, ApiError, ApiResult};
use super::state::{Execution, Shared, MAX_EXECUTIONS};

/// The tool paths the SDK calls (`POST /v1/tools/{name}`).
pub(super) const TOOLS: [&str; 13] = [
    "generate-image",
    "generate-video-clip",
    "generate-motion-graphic",
    "text-to-speech",
    "generate-sound-effect",
    "generate-music",
    "generate-avatar",
    "vectorize-image",
    "remove-image-background",
    "remove-video-background",
    "upscale-image",
    "upscale-video",
    "image-3d-effect",
];

/// `toolType` on the wire: `generate-image` → `GENERATE_IMAGE`.
fn tool_type(tool: &str) -> String {
    tool.replace('-', "_").to_uppercase()
}

/// The file type a tool produces.
fn output_type(tool: &str) -> &'static str {
    match tool {
        "generate-image" | "vectorize-image" | "remove-image-background" | "upscale-image" => {
            "IMAGE"
        }
        "text-to-speech" | "generate-sound-effect" | "generate-music" => "AUDIO",
        _ => "VIDEO",
    }
}

fn execution_json(shared: &Shared, e: &Execution, with_results: bool) -> Value {
    let mut results = Vec::new();
    if with_results && e.status == "succeeded" {
        if let Some(file) = e
            .output_file
            .as_deref()
            .and_then(|id| shared.render_file(id, None, View::Hydrated))
        {
            let g = |k: &str| file.get(k).cloned().unwrap_or(Value::Null);
            results.push(json!({
                "fileId": g("fileId"),
                "type": g("type"),
                "downloadUrl": g("downloadUrl"),
                "downloadUrlExpiresAt": g("downloadUrlExpiresAt"),
                "thumbnailUrl": g("thumbnailUrl"),
                "thumbnailUrlExpiresAt": g("thumbnailUrlExpiresAt"),
                "file": file,
            }));
        }
    }
    json!({
        "toolExecutionId": e.id,
        "toolType": e.tool_type,
        "status": e.status,
        "createdAt": clock::iso8601(e.created_at),
        "completedAt": if e.status == "pending" { Value::Null } else { json!(clock::iso8601(e.created_at)) },
        "error": null,
        "results": results,
    })
}

/// `POST /v1/tools/{tool}`: `202` with a pending execution.
pub(super) fn start_tool(shared: &Shared, key: &str, tool: &str, body: &[u8]) -> ApiResult {
    let b = json_object(body)?;
    let prompt = b
        .get("prompt")
        .and_then(Value::as_str)
        .map(|p| p.chars().take(80).collect::<String>());
    let e = Execution {
        id: format!("vg_exec_{:016x}", rand::random::<u64>()),
        owner: key.to_string(),
        tool_type: tool_type(tool),
        output_type: output_type(tool),
        created_at: clock::now_secs(),
        polls: 0,
        status: "pending",
        output_file: None,
    };
    {
        let mut inner = shared.lock();
        if inner.executions.len() >= MAX_EXECUTIONS {
            return Err(ApiError::new(
                429,
                "rate_limited",
                "Too many tool executions.",
            ));
        }
        inner.exec_order.push(e.id.clone());
        inner.executions.insert(e.id.clone(), e.clone());
        // The prompt names the output file, created on the poll that succeeds.
        if let Some(p) = prompt {
            inner.prompts.insert(e.id.clone(), p);
        }
    }
    Ok((
        202,
        json!({
            "toolExecutionId": e.id,
            "toolType": e.tool_type,
            "status": "pending",
            "createdAt": clock::iso8601(e.created_at),
        }),
    ))
}

/// `GET /v1/tools/executions/{id}`: counts the poll; the second one completes the execution.
pub(super) fn get_execution(shared: &Shared, key: &str, id: &str) -> ApiResult {
    let snapshot = {
        let mut inner = shared.lock();
        let inner = &mut *inner;
        let e = inner
            .executions
            .get_mut(id)
            .filter(|e| e.owner == key)
            .ok_or_else(|| ApiError::not_found("Tool execution"))?;
        e.polls = e.polls.saturating_add(1);
        if e.status == "pending" && e.polls >= 2 {
            let name = inner
                .prompts
                .remove(id)
                .unwrap_or_else(|| format!("{} output", e.tool_type.to_lowercase()));
            let spec = FileSpec {
                file_type: e.output_type.to_string(),
                display_name: name,
                duration_seconds: (e.output_type != "IMAGE").then_some(8.0),
                statuses: SourceStatuses {
                    hls: if e.output_type == "VIDEO" {
                        "ready"
                    } else {
                        "skipped"
                    }
                    .into(),
                    ..SourceStatuses::default()
                },
                public_preview: false,
                description: None,
            };
            let tool = e.tool_type.clone();
            let account = shared.account(key).cloned();
            let file_id = account.and_then(|a| inner.insert_file(&a, spec, Some((&tool, id))));
            if let Some(e) = inner.executions.get_mut(id) {
                e.output_file = file_id;
                e.status = "succeeded";
            }
        }
        inner.executions.get(id).cloned()
    };
    let e = snapshot.ok_or_else(|| ApiError::not_found("Tool execution"))?;
    Ok((200, execution_json(shared, &e, true)))
}

/// `POST /v1/tools/executions/{id}/cancel`: only a pending execution changes.
pub(super) fn cancel_execution(shared: &Shared, key: &str, id: &str) -> ApiResult {
    let e = {
        let mut inner = shared.lock();
        let e = inner
            .executions
            .get_mut(id)
            .filter(|e| e.owner == key)
            .ok_or_else(|| ApiError::not_found("Tool execution"))?;
        if e.status == "pending" {
            e.status = "cancelled";
        }
        e.clone()
    };
    Ok((200, execution_json(shared, &e, false)))
}

/// `GET /v1/tools/executions?limit`: newest first, without results.
pub(super) fn list_executions(shared: &Shared, key: &str, query: &str) -> ApiResult {
    let q = query_map(query);
    let limit = parse_limit(query_get(&q, "limit"), 20, 100)?;
    let (list, has_more) = {
        let inner = shared.lock();
        let mut mine = inner
            .exec_order
            .iter()
            .rev()
            .filter_map(|id| inner.executions.get(id))
            .filter(|e| e.owner == key);
        let list: Vec<Execution> = mine.by_ref().take(limit).cloned().collect();
        (list, mine.next().is_some())
    };
    let items: Vec<Value> = list
        .iter()
        .map(|e| execution_json(shared, e, false))
        .collect();
    Ok((
        200,
        json!({"executions": items, "hasMore": has_more, "nextCursor": null}),
    ))
}
