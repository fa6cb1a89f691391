//! The body each endpoint is sent for an event: as it travels, or, for an event whose
//! data is checked in (`hookline::claim_check`), whole (its data fetched once for the
//! fan-out or attempt) or thin (with a data URL made for this attempt, lasting an hour
//! or until the event expires).

use crate::Deliverer;
use bytes::Bytes;
use hookline::claim_check::{self, Form};
use hookline::endpoint::Endpoint;
use hookline::event::Event;
use hookline::ports::{Clock, PortError, PortResult};
use tokio::sync::OnceCell;

/// The whole body of a checked-in event, once fetched.
pub(crate) type Whole = OnceCell<Bytes>;

impl<S, H, Q, C: Clock> Deliverer<S, H, Q, C> {
    /// What `ep` is sent for `event`, whose travelling envelope is `travelling`.
    pub(crate) async fn body_for(
        &self,
        event: &Event,
        travelling: &Bytes,
        ep: &Endpoint,
        whole: &Whole,
    ) -> PortResult<Bytes> {
        let Some(r) = &event.data_ref else {
            return Ok(travelling.clone());
        };
        match claim_check::form_for(event, ep.body_limit()) {
            Form::Inline => Ok(travelling.clone()),
            Form::Thin => {
                let lifetime = claim_check::url_lifetime(event, self.clock.now());
                let url = self.data.data_url(&r.key, lifetime).await?;
                Ok(Bytes::from(claim_check::thin(event, &url)))
            }
            Form::Whole => whole
                .get_or_try_init(|| async {
                    let Some(fetched) = self.data.get_data(&r.key).await? else {
                        return Err(PortError::permanent(
                            "GetObject",
                            "the event's data is no longer stored (its retention ended)",
                        ));
                    };
                    claim_check::whole(event, &fetched).map(Bytes::from).map_err(|e| {
                        PortError::permanent("read checked-in data", "not the event's").caused_by(e)
                    })
                })
                .await
                .cloned(),
        }
    }
}
