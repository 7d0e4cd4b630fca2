"""Training: the only package in ``mtl_core`` that imports torch.

``loop`` trains one network per task group, ``replicas`` trains R copies of every network as
one batched model, ``affinity`` measures lookahead/proximal/cosine affinity, ``models`` holds
the multi-task network, ``optim_step`` simulates an optimizer step, and ``logger`` is the
``AffinityLogger`` for a user's own training loop. Importing this package itself imports no
torch; its modules do.
"""
