"""fd2's workflow module (type `langgraph_workflow`): the Control Tower's LangGraph workflow
config, run by fd2's own executor (docs/workflows.md says why not the langgraph library)."""

from fd2_workflows.module import WorkflowModule

__all__ = ["WorkflowModule"]
