"""Release actions through the Cloud Run Admin API: the rollback, and the rollback when a run fails.

``plan`` decides which revision the traffic goes back to (reads only), ``apply`` moves it and waits,
``admin_api`` turns every Admin API failure into one line, ``command`` is ``cloudrun-smoke rollback``,
``on_failure`` is ``--rollback-on-failure``. Library use, without the CLI::

    services, revisions = run_clients(env, credentials_for(env))
    plan = plan_rollback(env, services, revisions)          # to="REVISION" to choose
    print(plan.describe())
    result = apply_rollback(plan, services, timeout=300)
"""
