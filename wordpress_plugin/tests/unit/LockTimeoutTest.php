<?php
/**
 * A stuck lock holder never hangs checkout: the lock is taken with a deadline, the order is
 * queued (Action Scheduler, else WP-Cron) and written later, exactly once.
 *
 * Time is a test clock: the writer's waits advance it instead of sleeping, so the deadline is
 * checked without depending on the machine's speed. The lock holder is a real separate process
 * (tests/lock-holder.php) holding a real flock() on the real file.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class LockTimeoutTest extends TapTestCase {

	/** @var float the writer's clock, in seconds */
	private $clock = 1000.0;

	/** @var float[] pauses the writer asked for */
	private $pauses = array();

	/** @var callable|null runs at the writer's first pause */
	private $on_first_pause = null;

	/** @var array|null the lock holder: process and pipes */
	private $holder = null;

	protected function tearDown(): void {
		$this->release_holder();
		parent::tearDown();
	}

	/** A writer whose pauses advance the test clock. */
	private function writer() {
		return new TAP_Log_Writer(
			function () {
				return $this->clock;
			},
			function ( $seconds ) {
				if ( empty( $this->pauses ) && null !== $this->on_first_pause ) {
					call_user_func( $this->on_first_pause );
				}
				$this->pauses[] = $seconds;
				$this->clock   += $seconds;
			}
		);
	}

	private function waited() {
		return array_sum( $this->pauses );
	}

	/** Starts a process that holds the log's lock; returns once it does. */
	private function hold_lock( $path ) {
		if ( ! is_dir( dirname( $path ) ) ) {
			mkdir( dirname( $path ), 0750, true );
		}
		$process = proc_open(
			array( PHP_BINARY, dirname( __DIR__ ) . '/lock-holder.php', $path ),
			array( 0 => array( 'pipe', 'r' ), 1 => array( 'pipe', 'w' ), 2 => array( 'pipe', 'w' ) ),
			$pipes
		);
		$this->assertIsResource( $process );
		$this->holder = array( $process, $pipes );
		$said = fgets( $pipes[1] );
		if ( "locked\n" !== $said ) {
			$this->fail( 'the lock holder did not get the lock: ' . stream_get_contents( $pipes[2] ) ); // it has exited: stderr is complete
		}
	}

	/** Tells the holder to let go and waits until it has. */
	private function release_holder() {
		if ( null === $this->holder ) {
			return;
		}
		list( $process, $pipes ) = $this->holder;
		$this->holder = null;
		fwrite( $pipes[0], "release\n" );
		fclose( $pipes[0] );
		$said = fgets( $pipes[1] );
		fclose( $pipes[1] );
		fclose( $pipes[2] );
		$this->assertSame( 0, proc_close( $process ) );
		$this->assertSame( "released\n", $said );
	}

	// The writer -----------------------------------------------------------------------------

	public function test_writer_gives_up_at_the_deadline_and_writes_nothing(): void {
		$path = TAP_TEST_ROOT . '/outside/orders.log';
		$this->hold_lock( $path );

		try {
			$this->writer()->append( $path, "{\"a\":1}\n", 2.0 );
			$this->fail( 'expected a lock timeout' );
		} catch ( TAP_Log_Lock_Timeout $e ) {
			$this->assertStringContainsString( 'stayed locked by another process for 2.0 s', $e->getMessage() );
		}
		$this->assertEqualsWithDelta( 2.0, $this->waited(), 1e-9, 'waited the whole deadline, not more' );
		$this->assertGreaterThan( 10, count( $this->pauses ), 'polled, not one long sleep' );
		$this->assertLessThanOrEqual( TAP_Log_Writer::MAX_PAUSE, max( $this->pauses ) );
		clearstatcache();
		$this->assertSame( 0, filesize( $path ) );
	}

	public function test_writer_takes_the_lock_once_the_holder_lets_go(): void {
		$path = TAP_TEST_ROOT . '/outside/orders.log';
		$this->hold_lock( $path );
		$this->on_first_pause = function () {
			$this->release_holder();
		};

		$this->writer()->append( $path, "{\"a\":1}\n", 2.0 );
		$this->assertSame( "{\"a\":1}\n", file_get_contents( $path ) );
		$this->assertLessThan( 2.0, $this->waited() );
		$this->assertGreaterThan( 0.0, $this->waited(), 'it did have to wait' );
	}

	public function test_zero_timeout_is_a_single_attempt(): void {
		$path = TAP_TEST_ROOT . '/outside/orders.log';
		$this->hold_lock( $path );
		$this->expectException( TAP_Log_Lock_Timeout::class );
		try {
			$this->writer()->append( $path, "x\n", 0 );
		} finally {
			$this->assertSame( array(), $this->pauses );
		}
	}

	public function test_unlocked_file_is_written_without_waiting(): void {
		$path = TAP_TEST_ROOT . '/outside/orders.log';
		mkdir( dirname( $path ), 0750, true );
		$this->writer()->append( $path, "x\n", 2.0 );
		$this->assertSame( array(), $this->pauses );
		$this->assertSame( "x\n", file_get_contents( $path ) );
	}

	// The checkout ---------------------------------------------------------------------------

	public function test_stuck_lock_holder_checkout_returns_in_time_and_the_queued_action_writes_once(): void {
		$this->hold_lock( $this->default_log() );

		// The shopper's payment request: block checkout, then a card gateway's payment_complete(),
		// which fires the status hook and woocommerce_payment_complete.
		$this->new_request( array( 'visit_start_time' => (string) ( $this->now - 95 ), 'tap_pages_viewed' => '4' ), $this->writer() );
		$order = tap_test_make_order( array( 'id' => 801, 'payment_method' => 'stripe' ) );
		do_action( 'woocommerce_store_api_checkout_order_processed', $order );
		wc_get_order( 801 )->payment_complete( 'txn_801' );

		$this->assertSame( 1, did_action( 'woocommerce_payment_complete' ), 'the checkout went on' );
		$this->assertLessThanOrEqual( 2.0 + 1e-9, $this->waited(), 'one wait of at most the deadline, not one per hook' );
		$this->assertSame( array(), $this->log_lines() );
		$this->assertSame( '', wc_get_order( 801 )->get_meta( TAP_Order_Logger::META_LOGGED ), 'not flagged: not written' );
		$queued = tap_test_pending_actions( TAP_Retry_Queue::HOOK );
		$this->assertCount( 1, $queued );
		$this->assertSame( array( 801, 1, 'paid', 0, 0 ), $queued[0]['args'] );
		$this->assertSame( TAP_Retry_Queue::GROUP, $queued[0]['group'] );
		$this->assertSame( 'async', $queued[0]['type'] );
		$this->assertStringContainsString( 'queued for a retry', implode( "\n", $GLOBALS['tap_wc_logger']->messages( 'warning' ) ) );
		$this->assertSame( array(), $this->errors_reported() );

		// The holder lets go; Action Scheduler's runner, in its own request without the shopper's cookies.
		$this->release_holder();
		$this->now += 60;
		$this->new_request( array() );
		tap_test_run_action( $queued[0]['id'] );

		$events = $this->log_events();
		$this->assertCount( 1, $events );
		$this->assertSame( 801, $events[0]['order_id'] );
		$this->assertSame( 95, $events[0]['duration_session'], 'the visit stored at checkout' );
		$this->assertSame( 4, $events[0]['pages_viewed'] );
		$this->assertNotSame( '', wc_get_order( 801 )->get_meta( TAP_Order_Logger::META_LOGGED ) );
		$this->assertSame( 'complete', $GLOBALS['tap_as']['actions'][ $queued[0]['id'] ]['status'] );

		// Run twice (a runner retrying, a copy queued by hand): still one line.
		tap_test_run_action( $queued[0]['id'] );
		$this->new_request( array() );
		do_action_ref_array( TAP_Retry_Queue::HOOK, array( 801, 1, 'paid', 0, 0 ) );
		do_action_ref_array( TAP_Retry_Queue::HOOK, array( 801, 1 ) ); // as queued by 1.x
		$this->assertCount( 1, $this->log_lines() );
		$this->assertSame( array(), tap_test_pending_actions( TAP_Retry_Queue::HOOK ), 'nothing more queued' );
	}

	/** A writer whose lock is always busy, without a process: for the queue's own behaviour. */
	private function busy_writer() {
		return new class() extends TAP_Log_Writer {
			public $busy = true;
			public $timeouts = array();
			public function append( $path, $line, $lock_timeout = null ) {
				$this->timeouts[] = $lock_timeout;
				if ( $this->busy ) {
					throw new TAP_Log_Lock_Timeout( $path . ' stayed locked by another process for 2.0 s' );
				}
				parent::append( $path, $line, $lock_timeout );
			}
		};
	}

	public function test_a_retry_that_finds_the_lock_busy_again_reschedules_with_backoff_then_gives_up(): void {
		$writer = $this->busy_writer();
		$this->new_request( null, $writer );
		tap_test_make_order( array( 'id' => 802 ) );
		wc_get_order( 802 )->update_status( 'processing' );

		for ( $attempt = 1; $attempt < TAP_Retry_Queue::MAX_ATTEMPTS; $attempt++ ) {
			$pending = tap_test_pending_actions( TAP_Retry_Queue::HOOK );
			$this->assertCount( 1, $pending, "attempt $attempt queued once" );
			$this->assertSame( TAP_Retry_Queue::args( 802, $attempt ), $pending[0]['args'] );
			if ( $attempt > 1 ) {
				$this->assertSame( 'single', $pending[0]['type'] );
				$this->assertSame( $this->now + TAP_Retry_Queue::delay( $attempt ), $pending[0]['timestamp'] );
			}
			$this->now = max( $this->now, $pending[0]['timestamp'] );
			$this->new_request( array(), $writer );
			tap_test_run_action( $pending[0]['id'] );
		}
		// The last attempt fails too: reported, nothing more queued, the order still unflagged.
		$pending = tap_test_pending_actions( TAP_Retry_Queue::HOOK );
		$this->assertSame( array( 802, TAP_Retry_Queue::MAX_ATTEMPTS, 'paid', 0, 0 ), $pending[0]['args'] );
		$this->new_request( array(), $writer );
		tap_test_run_action( $pending[0]['id'] );
		$this->assertSame( array(), tap_test_pending_actions( TAP_Retry_Queue::HOOK ) );
		$this->assertStringContainsString( 'giving up', implode( "\n", $this->errors_reported() ) );
		$this->assertSame( '', wc_get_order( 802 )->get_meta( TAP_Order_Logger::META_LOGGED ) );

		// The next paid hook still writes it.
		$writer->busy = false;
		$this->new_request( null, $writer );
		wc_get_order( 802 )->update_status( 'completed' );
		$this->assertCount( 1, $this->log_lines() );
	}

	public function test_backoff_delays(): void {
		$this->assertSame( 0, TAP_Retry_Queue::delay( 1 ) );
		$this->assertSame( 30, TAP_Retry_Queue::delay( 2 ) );
		$this->assertSame( 60, TAP_Retry_Queue::delay( 3 ) );
		$this->assertSame( 1920, TAP_Retry_Queue::delay( 8 ) );
		$this->assertSame( 3600, TAP_Retry_Queue::delay( 9 ) );
		$this->assertSame( 3600, TAP_Retry_Queue::delay( 1000 ) );
	}

	public function test_the_same_order_is_queued_once_across_requests(): void {
		$writer = $this->busy_writer();
		tap_test_make_order( array( 'id' => 803 ) );
		foreach ( array( 'processing', 'completed' ) as $status ) {
			$this->new_request( null, $writer );
			wc_get_order( 803 )->update_status( $status );
		}
		$this->assertCount( 1, tap_test_pending_actions( TAP_Retry_Queue::HOOK ) );
	}

	public function test_action_scheduler_not_initialised_falls_back_to_wp_cron(): void {
		$GLOBALS['tap_as']['initialized'] = false; // as_*() return 0 before the data store is ready
		$writer = $this->busy_writer();
		$this->new_request( null, $writer );
		tap_test_make_order( array( 'id' => 804 ) );
		wc_get_order( 804 )->update_status( 'processing' );

		$this->assertSame( array(), $GLOBALS['tap_as']['actions'] );
		$this->assertSame( array( array( 'timestamp' => $this->now, 'hook' => TAP_Retry_Queue::HOOK, 'args' => array( 804, 1, 'paid', 0, 0 ) ) ), $GLOBALS['tap_wp_cron'] );

		$writer->busy = false;
		$this->new_request( array(), $writer );
		$this->assertSame( 1, tap_test_run_cron( $this->now ) );
		$this->assertCount( 1, $this->log_lines() );
	}

	public function test_without_action_scheduler_wp_cron_takes_the_retry_and_writes_once(): void {
		$code = '$GLOBALS["busy"] = true;'
			. ' $writer = new class() extends TAP_Log_Writer { public function append( $path, $line, $t = null ) {'
			. '   if ( $GLOBALS["busy"] ) { throw new TAP_Log_Lock_Timeout( "busy" ); } parent::append( $path, $line, $t ); } };'
			. ' $plugin = new TAP_Plugin( new TAP_Recording_Cookie_Jar(), null, $writer ); $plugin->register_hooks();'
			. ' tap_test_make_order( array( "id" => 805 ) ); wc_get_order( 805 )->update_status( "processing" );'
			. ' $queued = $GLOBALS["tap_wp_cron"];'
			. ' $GLOBALS["busy"] = false; $first = tap_test_run_cron( PHP_INT_MAX ); $second = tap_test_run_cron( PHP_INT_MAX );'
			. ' do_action_ref_array( "tap_order_logger_retry_write", array( 805, 1 ) );'
			. ' echo json_encode( array( function_exists( "as_enqueue_async_action" ), $queued[0]["hook"], $queued[0]["args"], $first, $second,'
			. '   substr_count( (string) @file_get_contents( TAP_TEST_SITE . "/tap-logs/orders.log" ), "\n" ) ) );';
		$out = $this->run_child( $code, array( 'TAP_TEST_WITHOUT_ACTION_SCHEDULER' => '1' ) );
		$this->assertSame( '[false,"tap_order_logger_retry_write",[805,1,"paid",0,0],1,0,1]', $out );
	}

	// The setting ----------------------------------------------------------------------------

	/** @return array<string, array{0: mixed, 1: float}> option value => seconds */
	public function timeouts(): array {
		return array(
			'unset'      => array( null, 2.0 ),
			'half'       => array( '0.5', 0.5 ),
			'zero'       => array( '0', 0.0 ),
			'too long'   => array( '99', 10.0 ),
			'negative'   => array( '-3', 0.0 ),
			'text'       => array( 'soon', 2.0 ),
			'infinite'   => array( INF, 2.0 ),
			'array'      => array( array( 1 ), 2.0 ),
		);
	}

	/** @dataProvider timeouts */
	public function test_lock_timeout_setting_is_bounded_and_reaches_the_writer( $option, float $expected ): void {
		if ( null !== $option ) {
			update_option( TAP_Order_Logger::LOCK_TIMEOUT_OPTION, $option );
		}
		$this->assertSame( $expected, TAP_Order_Logger::lock_timeout() );

		$writer = $this->busy_writer();
		$writer->busy = false;
		$this->new_request( null, $writer );
		tap_test_make_order( array( 'id' => 806 ) );
		wc_get_order( 806 )->update_status( 'processing' );
		$this->assertSame( array( $expected ), $writer->timeouts );
	}

	public function test_lock_timeout_filter(): void {
		add_filter( 'tap_order_log_lock_timeout', static function () {
			return 0.25;
		} );
		$this->assertSame( 0.25, TAP_Order_Logger::lock_timeout() );
	}
}
