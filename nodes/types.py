"""The pack's custom socket types, declared once (docs/architecture.md): any Python object flows through them."""

SCHEDULE = "EVOSEARCH_SCHEDULE"  #: evosearch.ScheduleSpec
MUTATION = "EVOSEARCH_MUTATION"  #: evosearch.Mutation
REWARD = "EVOSEARCH_REWARD"  #: any object with score(images, prompts) -> Tensor[B] (rewards/protocol.py)
RUN = "EVOSEARCH_RUN"  #: nodes.search_sampler.SearchRun
